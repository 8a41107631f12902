"""The one place for pipeline paths, model family and hyperparameters.

Every value has a default that runs the MovieLens-100K job on a laptop; the
CLI overrides any of them (`--set key=value`, `--hparam key=value`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

from data import storage
from models import families

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CURATED_SCHEMA = str(REPO_ROOT / "tfx_pipeline" / "schema" / "schema.pbtxt")
DEFAULT_DATASET = "movielens-100k"


@dataclasses.dataclass
class ExamplesConfig:
  """What ExampleGen writes.

  Attributes:
    split: `leave_last_out` (each user's newest positives are eval) or
      `temporal` (one cut time for everybody; see `data.examples`).
    temporal_cut_quantile: under `temporal`, the quantile of the positive
      timestamps where train ends.
    eval_holdout: under `leave_last_out`, newest positives per user held out
      for eval.
    history_length: most recent history items kept per example.
    ctr_negatives: for ranking families, label-0 examples sampled per
      positive (by train popularity, among items the user never chose).
    negative_seed: seed of that sampling and of the eval user sample; part
      of the data, so kept apart from the training seed.
    eval_max_users: if > 0, eval keeps a seeded sample of this many users,
      for logs too large to evaluate every user; train is unchanged.
  """
  split: str = "leave_last_out"
  temporal_cut_quantile: float = 0.9
  eval_holdout: int = 1
  history_length: int = 50
  ctr_negatives: int = 4
  negative_seed: int = 0
  eval_max_users: int = 0


@dataclasses.dataclass
class GateConfig:
  """The Evaluator's blessing thresholds.

  Attributes:
    metric: metric a retrieval family is gated on.
    lower_bound: the candidate's `metric` must be at least this.
    max_regression: the candidate may be worse than the last blessed model
      by at most this much (absolute), in `metric` for retrieval families and
      in AUC for ranking families.
    ranking_auc_lower_bound: a ranking family's model needs at least this AUC.
    ranking_log_loss_upper_bound: and at most this log loss; the default is
      the loss of always predicting 0.2, the positive rate of 1:4 sampled
      negatives.
    baseline: a family of `baselines.families` whose `metric` on the overall
      eval slice a retrieval model must beat (strictly) to be pushed, on top
      of the thresholds above (`components.baseline_gate`); "" for none.
  """
  metric: str = "recall_at_50"
  lower_bound: float = 0.05
  max_regression: float = 0.01
  ranking_auc_lower_bound: float = 0.6
  ranking_log_loss_upper_bound: float = 0.5004
  baseline: str = ""


@dataclasses.dataclass
class BaselinesConfig:
  """Classical baselines trained and scored in the same run as the model.

  Attributes:
    families: retrieval families trained beside a retrieval model, each by
      its own `BaselineTrainer_<family>` on the same Transform output, and
      scored by its own `Evaluator_<family>` with the model's metrics on the
      same eval split, ungated. One equal to the model family is skipped;
      ranking models (scored on sampled candidates, not the catalogue) get
      none.
    hparams: family -> hyperparameter overrides of that baseline; without,
      a baseline runs its family's defaults (EASE^R and item-kNN pick theirs
      on a validation split carved from train).
    fit_timeout_s: seconds a baseline's fit (its search included) may take
      before it is stopped and reported as not fitted; 0 for no limit. A
      baseline is there to be compared with: it must not hold the model's
      evaluation and push back for hours on a catalogue it cannot handle.
      An item-item baseline whose search leaves too little of it for the
      refit on every train row exports the search's fit of its chosen
      setting instead (`models.item_item.trainer.refit_or_reason`); its
      learning curve's `chosen` says so.
    select_best: push the best of the model and the baselines that fitted
      on validation carved from train (`components.model_selector`'s rule),
      instead of always the model. Nothing is pushed if the model's gate
      refuses it.
  """
  families: list[str] = dataclasses.field(
      default_factory=lambda: ["ease", "item_knn"])
  hparams: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  fit_timeout_s: float = 3600.0
  select_best: bool = True


@dataclasses.dataclass
class EmbeddingBenchmarkConfig:
  """The EmbeddingBenchmark component (probe tasks on frozen embeddings).

  Attributes:
    enabled: run it after the Trainer, on the trained retrieval model.
    tasks: its task specs (see `offline_eval.probes`); empty for the preset
      of the dataset.
    seeds: probe seeds; the report has mean ± std.
    baselines: row label -> `{"model_family": ..., "hparams": {...}}` of the
      retrieval models the benchmark scores next to this run's model, each
      trained by its own Trainer on the same data. A baseline inherits this
      run's hparams that its family knows (epochs, batch size, ...), then its
      own override them; one equal to this run's model is skipped. `{}`
      scores this run's model alone.
  """
  enabled: bool = False
  tasks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])
  baselines: dict[str, dict[str, Any]] = dataclasses.field(
      default_factory=lambda: {
          "two_tower": {"model_family": "two_tower"},
          "guim_k1": {"model_family": "guim", "hparams": {"num_interests": 1}},
      })


@dataclasses.dataclass
class KubeflowConfig:
  """Where the pipeline runs on Kubeflow Pipelines / Vertex AI.

  Attributes:
    image: container image with this package.
    pipeline_root: the workspace there.
    package_root: where the image holds this repository.
  """
  image: str = "ghcr.io/vrec/vrec-pipeline:latest"
  pipeline_root: str = "gs://YOUR_BUCKET/vrec"
  package_root: str = "/pipeline"


@dataclasses.dataclass
class TrainingConfig:
  """The machines the Trainer trains on (docs/scaling.md,
  `tfx_pipeline.distributed_training`).

  Attributes:
    workers: worker processes of one `MultiWorkerMirroredStrategy` job; 1
      trains in one process. More than 1 needs the Vertex AI target.
    gpus_per_worker: GPUs of each worker, mirrored over (more than 1:
      `MirroredStrategy` on one worker).
    machine_type: a worker's Vertex AI machine type.
    accelerator_type: its Vertex AI GPU type.
    vertex_project: the Google Cloud project the training job runs in.
    vertex_region: its region.
  """
  workers: int = 1
  gpus_per_worker: int = 0
  machine_type: str = "n1-standard-16"
  accelerator_type: str = "NVIDIA_TESLA_T4"
  vertex_project: str = ""
  vertex_region: str = "us-central1"


@dataclasses.dataclass
class PipelineConfig:
  """Configuration of one pipeline.

  Attributes:
    pipeline_name: name in MLMD and in the KFP pipeline spec.
    dataset: an importer name (`movielens-100k`, `amazon-grocery`, see
      `data.importers.IMPORTERS`), or `contract` to read
      `dataset_dir` as the user's own contract directory.
    dataset_dir: the contract directory; derived from the workspace when an
      importer is used.
    workspace: root of everything the local run writes (default:
      `./workspace`, from the working directory); a local path or a URI
      such as `s3://bucket/vrec` (then see `metadata_dir`).
    model_family: a family of `models.families.FAMILIES`; by default the
      default dataset's (`families.default_family`), and on the command
      line the named dataset's.
    hparams: overrides of the family's hyperparameters, whose defaults live
      beside the model (e.g. `models.retrieval.two_tower.TwoTowerConfig`).
    pretrain_hparams: overrides for the family that pre-trains
      `model_family` (its `FamilySpec.pretrained_by`), if it has one.
    seed: seed of every Trainer (initialisation, shuffling, sampling).
    model_name: serving name; models are pushed to
      `<serving_dir>/<model_name>/<version>/`.
    serving_dir: TF Serving model base path; derived from the workspace.
    schema_path: curated schema for ImportSchemaGen; empty to infer one with
      SchemaGen instead.
    beam_args: Beam pipeline args; add e.g. `--runner=FlinkRunner`.
    enable_cache: reuse MLMD-cached component outputs.
    examples: what ExampleGen writes.
    gate: the blessing thresholds.
    baselines: the classical baselines trained and scored beside the model.
    embedding_benchmark: the optional embedding probe benchmark.
    kubeflow: where the pipeline runs on KFP.
    training: the Trainer's workers and GPUs.
    metadata_dir: the folder of the SQLite ML-Metadata stores, which need a
      local disk; default `<workspace>/metadata`, or `./metadata` from the
      working directory when the workspace is a URI.
  """
  pipeline_name: str = "vrec-retrieval"
  dataset: str = DEFAULT_DATASET
  dataset_dir: str = ""
  workspace: str = dataclasses.field(
      default_factory=lambda: os.path.abspath("workspace"))
  model_family: str = families.default_family(DEFAULT_DATASET)
  hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
  pretrain_hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
  seed: int = 0
  model_name: str = "retrieval"
  serving_dir: str = ""
  schema_path: str = CURATED_SCHEMA
  beam_args: list[str] = dataclasses.field(
      default_factory=lambda: ["--direct_running_mode=in_memory"])
  enable_cache: bool = True
  examples: ExamplesConfig = dataclasses.field(default_factory=ExamplesConfig)
  gate: GateConfig = dataclasses.field(default_factory=GateConfig)
  baselines: BaselinesConfig = dataclasses.field(
      default_factory=BaselinesConfig)
  embedding_benchmark: EmbeddingBenchmarkConfig = dataclasses.field(
      default_factory=EmbeddingBenchmarkConfig)
  kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)
  training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
  metadata_dir: str = ""

  def __post_init__(self):
    if not is_uri(self.workspace):
      self.workspace = os.path.abspath(self.workspace)
    if not self.dataset_dir:
      if self.dataset == "contract":
        raise ValueError("dataset 'contract' needs dataset_dir")
      self.dataset_dir = os.path.join(self.workspace, "datasets", self.dataset)
    if not self.serving_dir:
      self.serving_dir = os.path.join(self.workspace, "serving")

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.workspace, "pipelines", self.pipeline_name)

  @property
  def metadata_path(self) -> str:
    metadata_dir = self.metadata_dir or (
        os.path.abspath("metadata") if is_uri(self.workspace)
        else os.path.join(self.workspace, "metadata"))
    return os.path.join(metadata_dir, self.pipeline_name, "metadata.sqlite")

  @property
  def push_dir(self) -> str:
    return os.path.join(self.serving_dir, self.model_name)

  def hparams_for(self, model_family: str) -> dict[str, Any]:
    """The overrides for `model_family`: the main family or its pre-training."""
    return dict(self.hparams if model_family == self.model_family
                else self.pretrain_hparams)

  @property
  def full_beam_args(self) -> list[str]:
    """Beam args with the direct runner as the default runner."""
    args = list(self.beam_args)
    if not any(arg.startswith("--runner") for arg in args):
      args.insert(0, "--runner=DirectRunner")
    return args

  def set(self, key: str, value: str) -> None:
    """Overrides one field from its string form, e.g. from the CLI.

    Args:
      key: a field name, dotted into a group: `seed`, `gate.lower_bound`,
        `embedding_benchmark.enabled`.
      value: the string form; lists and dicts are JSON.

    Raises:
      KeyError: naming the known keys, if `key` is not one.
    """
    *groups, name = key.split(".")
    target = self
    for group in groups:
      target = getattr(target, group, None)
      if not dataclasses.is_dataclass(target):
        raise KeyError(f"unknown config group {group!r} in {key!r}; known: "
                       f"{sorted(known_keys(self))}")
    fields = {f.name for f in dataclasses.fields(target)}
    current = getattr(target, name, None)
    if name not in fields or dataclasses.is_dataclass(current):
      raise KeyError(f"unknown config key {key!r}; known: "
                     f"{sorted(known_keys(self))}")
    if isinstance(current, bool):
      parsed = value.lower() in ("1", "true", "yes")
    elif isinstance(current, (int, float)):
      parsed = type(current)(value)
    elif isinstance(current, (list, dict)):
      parsed = json.loads(value)
    else:
      parsed = value
    setattr(target, name, parsed)


def known_keys(config, prefix: str = "") -> list[str]:
  """Every key `PipelineConfig.set` takes, groups dotted."""
  keys = []
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if dataclasses.is_dataclass(value):
      keys += known_keys(value, f"{prefix}{field.name}.")
    else:
      keys.append(prefix + field.name)
  return keys


def is_uri(path: str) -> bool:
  return "://" in path


def parse_hparam(value: str) -> Any:
  """Parses a CLI hyperparameter value: JSON if it parses, else a string."""
  try:
    return json.loads(value)
  except json.JSONDecodeError:
    return value


def fingerprint_directory(directory: str) -> str:
  """Changes whenever a file in `directory` is added, removed or changed.

  Used as a component parameter so that MLMD does not serve a cached result
  computed from older data. `directory` may be a URI (`data.storage`).
  """
  return storage.fingerprint(directory)
