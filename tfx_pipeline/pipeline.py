"""Pipeline topology: `create_pipeline(config)`.

InteractionExampleGen -> StatisticsGen -> (Import)SchemaGen -> ExampleValidator
-> AnomaliesGate -> Transform -> [PretrainTrainer ->] Trainer -> Evaluator
(against the last blessed model) -> [BaselineGate ->] [ScannIndexGen ->]
[ModelSelector ->] Pusher. What depends on the model family comes from its
`models.families.FamilySpec`: a family with `pretrained_by` gets the
pre-training Trainer; ranking families get CTR negatives; only indexed
retrieval families get the index.

A retrieval model gets its classical baselines (`config.baselines`) in the
same run: each a `BaselineTrainer_<family>` on the same Transform output and
an ungated `Evaluator_<family>` with the model's metrics on the same eval
split. A baseline that cannot fit does not fail the run
(`components.baseline_fit`): it is reported, and the model goes on. With
`config.gate.baseline`, BaselineGate blesses the model for the Pusher only if
the Evaluator blessed it and it beats that baseline. With
`config.baselines.select_best` (the default), ModelSelector hands the Pusher
the best of the blessed model and the baselines that fitted, on validation
carved from train (`components.model_selector`). With
`config.embedding_benchmark.enabled`, EmbeddingBenchmark probes the Trainer's
model next to baseline models, each from its own `BaselineTrainer_<label>`.
Runners (local, Kubeflow) only decide where it runs.
"""

from __future__ import annotations

import functools
import json
import os

from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline_lib
from tfx.types import channel_utils

from models import families
from tfx_pipeline.components import anomalies_gate
from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import baseline_gate
from tfx_pipeline.components import embedding_benchmark
from tfx_pipeline.components import interaction_example_gen
from tfx_pipeline.components import model_selector
from tfx_pipeline.components import pushed_baseline
from tfx_pipeline.components import process_trainer
from tfx_pipeline.components import scann_index_gen
from tfx_pipeline import config as config_lib
from tfx_pipeline import distributed_training
from tfx_pipeline import evaluation

PREPROCESSING_FN = "transforms.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"
# The id of the baseline lookup that replaces the resolver.
LATEST_PUSHED_MODEL = "LatestPushedModel"


def create_pipeline(config: config_lib.PipelineConfig,
                    metadata_connection_config=None,
                    input_fingerprint: str = "",
                    baseline_from_serving: bool = False,
                    vertex_training: bool = False
                    ) -> tfx_pipeline_lib.Pipeline:
  """Builds the TFX pipeline described by `config`.

  Args:
    config: the pipeline configuration.
    metadata_connection_config: MLMD connection; None lets the runner decide
      (Kubeflow brings its own).
    input_fingerprint: identifies the input files' content for the cache.
    baseline_from_serving: find the Evaluator's baseline, the latest blessed
      model, in `config.push_dir` with a container task
      (`components.pushed_baseline`) instead of an ML Metadata resolver, for
      orchestrators that cannot run resolvers (open-source Kubeflow
      Pipelines).
    vertex_training: the Trainer starts a Vertex AI custom job with
      `config.training`'s worker pools (`distributed_training`).

  Returns:
    The pipeline, ready for any TFX runner.

  Raises:
    ValueError: if `config.model_family` is not a registered family, or on
      a baseline `classical_baselines` refuses.
  """
  family = families.get(config.model_family)
  baselines = classical_baselines(config)
  example_gen = _example_gen(config, family, input_fingerprint)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs["examples"])
  schema_gen = _schema_gen(config, statistics_gen)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  gate = anomalies_gate.AnomaliesGate(
      anomalies=example_validator.outputs["anomalies"])
  transform = _transform(example_gen, schema_gen, gate)

  make_trainer = functools.partial(_trainer, config, transform, schema_gen)
  pretrainer = (make_trainer(family.pretrained_by).with_id("PretrainTrainer")
                if family.pretrained_by else None)
  vertex_job = (dict(component=distributed_training.VertexTrainer,
                     **distributed_training.vertex_custom_config(
                         config.training, config.kubeflow.image))
                if vertex_training else {})
  trainer = make_trainer(
      config.model_family,
      base_model=pretrainer.outputs["model"] if pretrainer else None,
      **vertex_job)
  baseline_lookup, evaluator = _evaluator(config, example_gen, trainer,
                                          baseline_from_serving)
  index_gen, pushed_model = _index_gen(family, example_gen, trainer)
  baseline_trainers, baseline_evaluators = _classical_baselines(
      config, baselines, make_trainer, example_gen)
  gate_on_baseline, blessing = _baseline_gate(config, evaluator,
                                              baseline_evaluators)
  benchmark_trainers, benchmark = _embedding_benchmark(
      config, family, make_trainer, example_gen, trainer)
  selectors, pushed_model, blessing = _model_selector(
      config, trainer, pushed_model, blessing, baseline_trainers)
  pusher = tfx.components.Pusher(
      model=pushed_model,
      model_blessing=blessing,
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=config.push_dir)))

  components = [example_gen, statistics_gen, schema_gen, example_validator,
                gate, transform, pretrainer, trainer,
                *baseline_trainers.values(), *benchmark_trainers,
                baseline_lookup, evaluator, *baseline_evaluators.values(),
                gate_on_baseline, index_gen, benchmark, *selectors, pusher]
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=[c for c in components if c is not None],
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=config.full_beam_args)


def _example_gen(config: config_lib.PipelineConfig,
                 family: families.FamilySpec, input_fingerprint: str):
  """InteractionExampleGen; CTR negatives only for a ranking family."""
  return interaction_example_gen.InteractionExampleGen(
      dataset_dir=config.dataset_dir,
      eval_holdout=config.examples.eval_holdout,
      history_length=config.examples.history_length,
      input_fingerprint=input_fingerprint,
      ctr_negatives=(config.examples.ctr_negatives if family.is_ranking else 0),
      negative_seed=config.examples.negative_seed,
      split=config.examples.split,
      temporal_cut_quantile=config.examples.temporal_cut_quantile,
      eval_max_users=config.examples.eval_max_users)


def _schema_gen(config: config_lib.PipelineConfig, statistics_gen):
  """ImportSchemaGen of `config.schema_path`, or SchemaGen inferring one."""
  if config.schema_path:
    return tfx.components.ImportSchemaGen(schema_file=config.schema_path)
  return tfx.components.SchemaGen(
      statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)


def _transform(example_gen, schema_gen, gate):
  """Transform, analysing the train split, run after the anomalies gate."""
  transform = tfx.components.Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      preprocessing_fn=PREPROCESSING_FN,
      splits_config=tfx.proto.SplitsConfig(analyze=["train"],
                                           transform=["train", "eval"]),
      # StatisticsGen already computes the raw statistics ExampleValidator
      # reads, and nothing reads Transform's pre-/post-transform ones.
      disable_statistics=True)
  # Transform reads nothing from the gate; the edge only orders the run.
  transform.add_upstream_node(gate)
  return transform


def _trainer(config: config_lib.PipelineConfig, transform, schema_gen,
             model_family: str, base_model=None, hparams=None,
             label: str | None = None,
             component=process_trainer.ProcessTrainer,
             **custom_config):
  """A Trainer of `model_family` on Transform's output.

  Args:
    config: the pipeline configuration.
    transform: the Transform component whose output it trains on.
    schema_gen: the schema's component.
    model_family: the family `models.trainer.run_fn` builds.
    base_model: a pre-trained model channel to start from, or None.
    hparams: the family's hyperparameters; None for `config`'s.
    label: the model's label; None for the family's name.
    component: the Trainer class: a child process whose memory ends with
      it (`process_trainer`); a baseline's also tolerates failing to fit.
    **custom_config: more of the Trainer's custom config.
  """
  return component(
      run_fn=RUN_FN,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      base_model=base_model,
      train_args=tfx.proto.TrainArgs(splits=["train"]),
      eval_args=tfx.proto.EvalArgs(splits=["eval"]),
      custom_config={
          families.FAMILY_KEY: model_family,
          families.HPARAMS_KEY: (config.hparams_for(model_family)
                                 if hparams is None else hparams),
          families.LABEL_KEY: label or model_family,
          families.SEED_KEY: config.seed,
          families.HISTORY_LENGTH_KEY: config.examples.history_length,
          **distributed_training.strategy_config(config.training),
          **custom_config,
      })


def _evaluator(config: config_lib.PipelineConfig, example_gen, trainer,
               baseline_from_serving: bool):
  """The lookup of the last blessed model and the Evaluator against it.

  Returns:
    `(baseline lookup, evaluator)`: an MLMD resolver and TFX's Evaluator,
    or with `baseline_from_serving` a container task reading the push
    directory and the Evaluator that takes its output.
  """
  if baseline_from_serving:
    baseline_lookup = pushed_baseline.LatestPushedModel(
        push_dir=config.push_dir).with_id(LATEST_PUSHED_MODEL)
    evaluator_class = pushed_baseline.PushedBaselineEvaluator
  else:
    baseline_lookup = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator_class = tfx.components.Evaluator
  evaluator = evaluator_class(
      examples=example_gen.outputs["examples"],
      model=trainer.outputs["model"],
      baseline_model=baseline_lookup.outputs["model"],
      example_splits=["eval"],
      eval_config=evaluation.eval_config(config)).with_id("Evaluator")
  return baseline_lookup, evaluator


def _index_gen(family: families.FamilySpec, example_gen, trainer):
  """`(ScannIndexGen or None, the model channel the Pusher ships)`."""
  if not family.builds_index:
    # A ranker scores given candidates, an item-item model (`indexed=False`)
    # scores the catalogue from its sparse weights: no index to build.
    return None, trainer.outputs["model"]
  # The index is built from the same trained model the Evaluator blesses;
  # the Pusher ships that model with the index in its assets.extra/.
  index_gen = scann_index_gen.ScannIndexGen(
      model=trainer.outputs["model"],
      examples=example_gen.outputs["examples"])
  return index_gen, index_gen.outputs["indexed_model"]


def _classical_baselines(config: config_lib.PipelineConfig,
                         baselines: dict[str, dict], make_trainer,
                         example_gen):
  """`(family -> BaselineTrainer, family -> its ungated BaselineEvaluator)`
  of each of `baselines` (`classical_baselines(config)`)."""
  fit_budget = {families.FIT_TIMEOUT_KEY: config.baselines.fit_timeout_s}
  baseline_trainers = {
      baseline: make_trainer(
          baseline, hparams=hparams, component=baseline_fit.BaselineTrainer,
          **fit_budget).with_id(f"BaselineTrainer_{baseline}")
      for baseline, hparams in baselines.items()}
  baseline_evaluators = {
      baseline: baseline_fit.BaselineEvaluator(
          examples=example_gen.outputs["examples"],
          model=baseline_trainer.outputs["model"],
          example_splits=["eval"],
          eval_config=evaluation.baseline_eval_config()).with_id(
              f"Evaluator_{baseline}")
      for baseline, baseline_trainer in baseline_trainers.items()}
  return baseline_trainers, baseline_evaluators


def _baseline_gate(config: config_lib.PipelineConfig, evaluator,
                   baseline_evaluators: dict):
  """`(BaselineGate or None, the blessing the Pusher reads)`.

  With `config.gate.baseline`, the model is blessed only if the Evaluator
  blessed it and it beats that baseline; else the Evaluator's blessing.
  """
  if not config.gate.baseline:
    return None, evaluator.outputs["blessing"]
  gate_on_baseline = baseline_gate.BaselineGate(
      model_blessing=evaluator.outputs["blessing"],
      model_evaluation=evaluator.outputs["evaluation"],
      baseline_evaluation=baseline_evaluators[
          config.gate.baseline].outputs["evaluation"],
      metric=config.gate.metric, baseline=config.gate.baseline)
  return gate_on_baseline, gate_on_baseline.outputs["blessing"]


def _model_selector(config: config_lib.PipelineConfig, trainer, pushed_model,
                    blessing, baseline_trainers: dict):
  """`(ModelSelectors, the model and blessing the Pusher reads)`.

  With `config.baselines.select_best`, one ModelSelector per baseline, each
  between the best so far and that baseline; the last (`ModelSelector`)
  hands the Pusher the best of the model and its baselines on validation.
  Else none, and the Pusher reads the model and its gate's blessing.
  """
  if not config.baselines.select_best:
    return [], pushed_model, blessing
  selectors, info = [], trainer.outputs["model"]
  for number, (family, baseline) in enumerate(baseline_trainers.items(), 1):
    selector = model_selector.ModelSelector(
        model=pushed_model, trained_model=info, model_blessing=blessing,
        baseline_model=baseline.outputs["model"]).with_id(
            "ModelSelector" if number == len(baseline_trainers)
            else f"ModelSelector_{family}")
    selectors.append(selector)
    pushed_model = info = selector.outputs["selected_model"]
    blessing = selector.outputs["blessing"]
  return selectors, pushed_model, blessing


def _embedding_benchmark(config: config_lib.PipelineConfig,
                         family: families.FamilySpec, make_trainer,
                         example_gen, trainer):
  """`(its baselines' Trainers, EmbeddingBenchmark)`; `([], None)` unless
  `config.embedding_benchmark.enabled` for a retrieval model."""
  if not config.embedding_benchmark.enabled or family.is_ranking:
    return [], None
  benchmark_trainers = [
      make_trainer(baseline_family, hparams=hparams, label=label).with_id(
          f"BaselineTrainer_{label}")
      for label, (baseline_family, hparams)
      in benchmark_baselines(config).items()]
  benchmark = embedding_benchmark.EmbeddingBenchmark(
      model=trainer.outputs["model"],
      baseline_models=channel_utils.union(
          [baseline.outputs["model"] for baseline in benchmark_trainers])
      if benchmark_trainers else None,
      examples=example_gen.outputs["examples"],
      dataset_dir=config.dataset_dir,
      tasks_json=json.dumps(embedding_benchmark.tasks_for(
          config.dataset, config.embedding_benchmark.tasks)),
      seeds_json=json.dumps(config.embedding_benchmark.seeds))
  return benchmark_trainers, benchmark


def benchmark_baselines(config: config_lib.PipelineConfig
                        ) -> dict[str, tuple[str, dict]]:
  """Label -> (family, hparams) of each embedding benchmark baseline to train.

  Raises:
    ValueError: on a baseline that is not a retrieval family, or a label
      that is not a valid component id suffix.
  """
  main_hparams = config.hparams_for(config.model_family)
  baselines = {}
  for label, baseline in config.embedding_benchmark.baselines.items():
    if not label.replace("_", "").isalnum():
      raise ValueError(f"embedding benchmark baseline label {label!r}: use "
                       "letters, digits and underscores")
    spec = families.get(baseline.get("model_family", ""))
    if spec.kind != families.RETRIEVAL:
      raise ValueError(f"embedding benchmark baseline {label!r}: "
                       f"{spec.name!r} is not a retrieval family")
    hparams = {**spec.hparams_known(main_hparams),
               **baseline.get("hparams", {})}
    if spec.name == config.model_family and hparams == main_hparams:
      continue
    baselines[label] = (spec.name, hparams)
  return baselines


def classical_baselines(config: config_lib.PipelineConfig
                        ) -> dict[str, dict]:
  """Family -> hparams of each classical baseline to train and evaluate.

  A retrieval model gets `config.baselines.families`, less its own family;
  a ranking model gets none.

  Raises:
    ValueError: on a baseline that is not a retrieval family; on a
      `gate.baseline` that is not one of the baselines trained, or set for a
      ranking model; on a baseline whose Trainer id an embedding benchmark
      baseline label already takes.
  """
  for name in config.baselines.families:
    if families.get(name).kind != families.RETRIEVAL:
      raise ValueError(f"baselines.families: {name!r} is not a retrieval "
                       "family; a baseline is scored like the model, by "
                       "full-catalogue ranking")
  if families.get(config.model_family).is_ranking:
    if config.gate.baseline:
      raise ValueError(
          f"gate.baseline={config.gate.baseline!r} needs a retrieval model "
          f"family; {config.model_family!r} is a ranking family, scored on "
          "sampled candidates, and gets no baselines")
    return {}
  baselines = {name: dict(config.baselines.hparams.get(name, {}))
               for name in config.baselines.families
               if name != config.model_family}
  if config.gate.baseline and config.gate.baseline not in baselines:
    raise ValueError(
        f"gate.baseline={config.gate.baseline!r} is not a baseline of this "
        f"run: the baselines trained beside {config.model_family!r} are "
        f"{sorted(baselines)} (baselines.families, less the model's own "
        "family)")
  if config.embedding_benchmark.enabled:
    taken = set(baselines) & set(config.embedding_benchmark.baselines)
    if taken:
      raise ValueError(f"embedding benchmark baseline labels {sorted(taken)} "
                       "are also classical baselines (baselines.families): "
                       "rename them")
  return baselines


def local_metadata_config(config: config_lib.PipelineConfig):
  os.makedirs(os.path.dirname(config.metadata_path), exist_ok=True)
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(
      config.metadata_path)
