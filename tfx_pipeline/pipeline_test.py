"""Topology of `create_pipeline` for each kind of model family (no run)."""

import json

import pytest

from models import families
from tfx_pipeline import config as config_lib
from tfx_pipeline import evaluation
from tfx_pipeline import pipeline


def _components(config):
  return {component.id: component
          for component in pipeline.create_pipeline(config).components}


def _custom_config(component):
  return json.loads(component.exec_properties["custom_config"])


def test_retrieval_family_builds_the_index_and_has_one_trainer(tmp_path):
  components = _components(config_lib.PipelineConfig(workspace=str(tmp_path)))
  assert "ScannIndexGen" in components and "PretrainTrainer" not in components
  assert _custom_config(components["Trainer"])["model_family"] == "two_tower"


def test_pretrained_ranking_family_gets_two_trainers_and_no_index(tmp_path,
                                                                  monkeypatch):
  # A new family is one registry entry: nothing else in the pipeline changes.
  monkeypatch.setitem(families.FAMILIES, "test_pretrain", families.FamilySpec(
      "test_pretrain", families.PRETRAINING, "models.ctr.courier:CourierConfig",
      train="models.ctr.trainer:train_courier"))
  monkeypatch.setitem(families.FAMILIES, "test_ranker", families.FamilySpec(
      "test_ranker", families.RANKING, "models.ctr.ranking:RankingConfig",
      train="models.ctr.trainer:train_ranking", pretrained_by="test_pretrain"))
  config = config_lib.PipelineConfig(
      workspace=str(tmp_path), model_family="test_ranker",
      hparams={"epochs": 3}, pretrain_hparams={"epochs": 7}, seed=5)
  components = _components(config)
  assert "ScannIndexGen" not in components
  pretrainer, trainer = components["PretrainTrainer"], components["Trainer"]
  assert _custom_config(pretrainer) == {"model_family": "test_pretrain",
                                        "hparams": {"epochs": 7},
                                        "label": "test_pretrain", "seed": 5,
                                        "history_length": 50}
  assert _custom_config(trainer) == {"model_family": "test_ranker",
                                     "hparams": {"epochs": 3},
                                     "label": "test_ranker", "seed": 5,
                                     "history_length": 50}
  base_model = trainer.inputs["base_model"]
  assert base_model.producer_component_id == "PretrainTrainer"
  assert components["Pusher"].inputs["model"].producer_component_id == "Trainer"
  metrics = [m.class_name for m in
             evaluation.eval_config(config).metrics_specs[0].metrics]
  assert {"AUC", "BinaryCrossentropy"} <= set(metrics)


@pytest.mark.parametrize("family", ["ease", "item_knn"])
def test_item_item_family_is_gated_on_recall_and_pushed_without_index(
    tmp_path, family):
  config = config_lib.PipelineConfig(workspace=str(tmp_path),
                                     model_family=family, hparams={})
  components = _components(config)
  assert "ScannIndexGen" not in components
  assert "PretrainTrainer" not in components
  assert _custom_config(components["Trainer"])["model_family"] == family
  # The one other baseline, item-item too, is the one selection.
  assert _producer(components["ModelSelector"], "model") == "Trainer"
  assert _producer(components["Pusher"], "model") == "ModelSelector"
  assert (components["InteractionExampleGen"].exec_properties["ctr_negatives"]
          == 0)
  gated = [json.loads(metric.config)["name"] for metric in
           evaluation.eval_config(config).metrics_specs[0].metrics
           if metric.per_slice_thresholds]
  assert gated == [config.gate.metric]


def test_unknown_family_is_rejected_before_running(tmp_path):
  with pytest.raises(ValueError, match="unknown model family 'nope'"):
    pipeline.create_pipeline(config_lib.PipelineConfig(workspace=str(tmp_path),
                                                       model_family="nope"))


def test_nested_settings_reach_the_components(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("examples.history_length", "20")
  config.set("gate.lower_bound", "0.125")
  config.set("seed", "3")
  components = _components(config)
  assert components["InteractionExampleGen"].exec_properties[
      "history_length"] == 20
  assert _custom_config(components["Trainer"])["seed"] == 3
  bounds = [per_slice.threshold.value_threshold.lower_bound.value
            for spec in evaluation.eval_config(config).metrics_specs
            for metric in spec.metrics
            for per_slice in metric.per_slice_thresholds]
  assert bounds == [0.125]


def _producer(component, key):
  return component.inputs[key].producer_component_id


def test_baselines_are_trained_and_evaluated_ungated_beside_the_model(
    tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("baselines.fit_timeout_s", "900")
  components = _components(config)
  for family in ("ease", "item_knn"):
    trainer = components[f"BaselineTrainer_{family}"]
    assert _custom_config(trainer) == {"model_family": family, "hparams": {},
                                       "label": family, "seed": 0,
                                       "history_length": 50,
                                       "fit_timeout_s": 900.0}
    assert _producer(trainer, "examples") == "Transform"
    evaluator = components[f"Evaluator_{family}"]
    assert _producer(evaluator, "model") == f"BaselineTrainer_{family}"
    assert "baseline_model" not in evaluator.inputs
    eval_config = json.loads(evaluator.exec_properties["eval_config"])
    assert "per_slice_thresholds" not in json.dumps(eval_config)
    assert eval_config["slicing_specs"] == json.loads(
        components["Evaluator"].exec_properties["eval_config"])[
            "slicing_specs"]
  assert "BaselineGate" not in components
  assert _producer(components["ModelSelector_ease"],
                   "model_blessing") == "Evaluator"


def test_selection_chains_one_model_selector_per_baseline_into_the_pusher(
    tmp_path):
  components = _components(config_lib.PipelineConfig(workspace=str(tmp_path)))
  first, last = components["ModelSelector_ease"], components["ModelSelector"]
  assert [_producer(first, key) for key in (
      "model", "trained_model", "model_blessing", "baseline_model")] == [
          "ScannIndexGen", "Trainer", "Evaluator", "BaselineTrainer_ease"]
  assert [_producer(last, key) for key in (
      "model", "trained_model", "model_blessing", "baseline_model")] == [
          "ModelSelector_ease", "ModelSelector_ease", "ModelSelector_ease",
          "BaselineTrainer_item_knn"]
  assert _producer(components["Pusher"], "model") == "ModelSelector"
  assert _producer(components["Pusher"], "model_blessing") == "ModelSelector"


def test_without_selection_the_pusher_reads_the_model_and_its_gate(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("baselines.select_best", "false")
  components = _components(config)
  assert not [name for name in components if name.startswith("ModelSelector")]
  assert _producer(components["Pusher"], "model") == "ScannIndexGen"
  assert _producer(components["Pusher"], "model_blessing") == "Evaluator"


def test_gate_on_a_baseline_puts_baseline_gate_between_evaluator_and_pusher(
    tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("gate.baseline", "ease")
  config.set("gate.metric", "ndcg_at_10")
  components = _components(config)
  gate = components["BaselineGate"]
  assert _producer(gate, "model_blessing") == "Evaluator"
  assert _producer(gate, "model_evaluation") == "Evaluator"
  assert _producer(gate, "baseline_evaluation") == "Evaluator_ease"
  assert gate.exec_properties["metric"] == "ndcg_at_10"
  assert gate.exec_properties["baseline"] == "ease"
  assert _producer(components["ModelSelector_ease"],
                   "model_blessing") == "BaselineGate"


def test_the_models_own_family_is_no_baseline_and_rankers_get_none(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path),
                                     model_family="ease", hparams={})
  config.set("baselines.hparams", '{"item_knn": {"neighbours": 30}}')
  assert pipeline.classical_baselines(config) == {
      "item_knn": {"neighbours": 30}}
  ranking = config_lib.PipelineConfig(workspace=str(tmp_path),
                                      model_family="ranking")
  assert pipeline.classical_baselines(ranking) == {}
  assert not [name for name in _components(ranking)
              if name.startswith(("BaselineTrainer_", "Evaluator_"))]


@pytest.mark.parametrize("model_family, settings, error", [
    ("two_tower", {"gate.baseline": "sasrec"},
     r"gate.baseline='sasrec' is not a baseline of this run.*\['ease', "
     r"'item_knn'\]"),
    ("ease", {"gate.baseline": "ease"},
     r"gate.baseline='ease' is not a baseline of this run.*\['item_knn'\]"),
    ("two_tower", {"baselines.families": '["ease", "ranking"]'},
     r"'ranking' is not a retrieval family"),
    ("two_tower", {"baselines.families": '["nope"]'},
     r"unknown model family 'nope'"),
    ("ranking", {"gate.baseline": "ease"},
     r"needs a retrieval model family; 'ranking' is a ranking family"),
    ("two_tower", {"embedding_benchmark.enabled": "true",
                   "embedding_benchmark.baselines":
                       '{"ease": {"model_family": "ease"}}'},
     r"labels \['ease'\] are also classical baselines"),
])
def test_baseline_settings_that_cannot_work_are_refused(tmp_path,
                                                        model_family,
                                                        settings, error):
  config = config_lib.PipelineConfig(workspace=str(tmp_path),
                                     model_family=model_family)
  for key, value in settings.items():
    config.set(key, value)
  with pytest.raises(ValueError, match=error):
    pipeline.create_pipeline(config)


def test_transform_leaves_the_statistics_to_statistics_gen(tmp_path):
  # Transform's own statistics made its DirectRunner hold every transformed
  # example in memory until the write finished (OOM at 1M interactions), and
  # nothing reads them: ExampleValidator reads StatisticsGen's.
  components = _components(config_lib.PipelineConfig(workspace=str(tmp_path)))
  transform = components["Transform"]
  assert transform.exec_properties["disable_statistics"]
  assert "post_transform_stats" not in transform.outputs
  assert (_producer(components["ExampleValidator"], "statistics")
          == "StatisticsGen")
