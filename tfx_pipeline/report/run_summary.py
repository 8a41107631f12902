"""Reads a finished local run back from MLMD: timings, metrics, blessing, push.

Everything here comes from ML-Metadata and the artifacts it points at, so the
summary describes exactly what the run recorded: the model's Evaluator
metrics, each classical baseline's (`Evaluator_<family>`, overall slice), the
BaselineGate's comparison, ModelSelector's selection, the learning curve of
every Trainer that wrote one and the split protocol ExampleGen ran.
`summary_text` lays the summary out as the CLI prints it, `html_page` as the
run's report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Optional, Sequence

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from data import storage
from models import families
from models import serving_names
from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import baseline_gate as baseline_gate_lib
from tfx_pipeline.components import model_selector
from tfx_pipeline.report import eval_results

_NODE_CONTEXT_TYPE = "node"
MODEL_EVALUATOR = "Evaluator"
BASELINE_EVALUATOR_PREFIX = "Evaluator_"
BASELINE_GATE = "BaselineGate"
# The last ModelSelector, whose blessing the Pusher reads.
MODEL_SELECTOR = "ModelSelector"
MOST_POPULAR = "most-popular"
_MODEL_OUTPUT = serving_names.TARGET_RANK
_POPULARITY_OUTPUT = serving_names.POPULARITY_TARGET_RANK
_EXAMPLE_GEN = "InteractionExampleGen"
_SPLIT_PROPERTY = "split"
_TRAINER = "Trainer"
_CUSTOM_CONFIG_PROPERTY = "custom_config"
_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


@dataclasses.dataclass
class ComponentRun:
  """One component's execution: its state, and when it ran (epoch seconds)."""
  component: str
  state: str
  seconds: float
  started: float = 0.0


@dataclasses.dataclass
class RunSummary:
  """What one pipeline run did.

  Attributes:
    run_id: the MLMD pipeline run.
    components: each component's state and seconds, in start order.
    artifacts: `<component>.<output key>` -> URI.
    metrics: the model's Evaluator metrics, slice -> "output/metric" -> value.
    blessed: the blessing the Pusher read: ModelSelector's when the run
      selected, else BaselineGate's when the run had one, else the
      Evaluator's; None when none recorded one.
    pushed_dir: where the Pusher pushed, None if it did not.
    baseline_metrics: classical baseline family -> its Evaluator's overall
      "output/metric" -> value.
    baseline_failures: classical baseline family -> why it did not fit, for
      the baselines that did not (`components.baseline_fit`).
    baseline_gate: what BaselineGate compared and decided, if it ran.
    selection: what ModelSelector selected for the Pusher and why, if it ran.
    learning_curves: Trainer component -> its learning curve, for the
      Trainers that wrote one.
    item_images: Trainer component -> what it decoded and skipped of the
      item images (`transforms.item_images.DecodingSummary`), for the
      Trainers that read images.
    split: ExampleGen's split protocol, "" if it records none.
    gate_metric: the retrieval metric the model's Evaluator gates on.
    model_family: the Trainer's model family, "" if it records none.
  """
  run_id: str
  components: list[ComponentRun]
  artifacts: dict[str, str]
  metrics: dict[str, dict[str, float]]
  blessed: Optional[bool]
  pushed_dir: Optional[str]
  baseline_metrics: dict[str, dict[str, float]] = dataclasses.field(
      default_factory=dict)
  baseline_gate: Optional[baseline_gate_lib.Comparison] = None
  selection: Optional[model_selector.Selection] = None
  baseline_failures: dict[str, str] = dataclasses.field(default_factory=dict)
  learning_curves: dict[str, Any] = dataclasses.field(default_factory=dict)
  item_images: dict[str, Any] = dataclasses.field(default_factory=dict)
  split: str = ""
  gate_metric: str = ""
  model_family: str = ""


@dataclasses.dataclass(frozen=True)
class Scorer:
  """One row of the model-vs-baselines table: overall metric -> value."""
  label: str
  is_model: bool
  metrics: dict[str, float]


def overall_scorers(summary: RunSummary, model_label: str,
                    metric_names: Sequence[str]) -> list[Scorer]:
  """The model, each classical baseline and most-popular, overall.

  Every row comes from a TFMA output over the same eval split with the same
  metrics: the model's and most-popular's from the model's Evaluator, each
  baseline's from its `Evaluator_<family>`. Empty for a run without
  baselines (a ranking family, or `baselines.families` empty). A baseline
  that did not fit has no row (`RunSummary.baseline_failures` says why).
  """
  if not summary.baseline_metrics and not summary.baseline_failures:
    return []
  overall = summary.metrics.get("overall", {})

  def pick(row: dict, output: str) -> dict[str, float]:
    keys = {name: eval_results.metric_key(output, name)
            for name in metric_names}
    return {name: row[key] for name, key in keys.items() if key in row}

  return ([Scorer(model_label, True, pick(overall, _MODEL_OUTPUT))] +
          [Scorer(family, False, pick(row, _MODEL_OUTPUT))
           for family, row in sorted(summary.baseline_metrics.items())] +
          [Scorer(MOST_POPULAR, False, pick(overall, _POPULARITY_OUTPUT))])


def strongest_baseline(scorers: Sequence[Scorer],
                       metric: str) -> Optional[Scorer]:
  """The baseline (most-popular included) with the highest `metric`."""
  baselines = [s for s in scorers if not s.is_model and metric in s.metrics]
  return max(baselines, key=lambda s: s.metrics[metric], default=None)


def baseline_verdict(scorers: Sequence[Scorer], metric: str) -> str:
  """Which baseline is strongest by `metric`, and whether the model beats it."""
  strongest = strongest_baseline(scorers, metric)
  model = next((s for s in scorers if s.is_model), None)
  if strongest is None or model is None or metric not in model.metrics:
    return ""
  margin = model.metrics[metric] - strongest.metrics[metric]
  return (f"strongest baseline by {metric}: {strongest.label} "
          f"({strongest.metrics[metric]:.4f}); the model ({model.label}, "
          f"{model.metrics[metric]:.4f}) "
          f"{'beats' if margin > 0 else 'does not beat'} it "
          f"(margin {margin:+.4f})")


def _store(metadata_path: str) -> mlmd.MetadataStore:
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = metadata_path
  connection.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return mlmd.MetadataStore(connection)


def latest_run_executions(metadata_path: str):
  """Returns (store, run_id, executions) of the newest run in an MLMD store.

  The local runner keeps one MLMD database per pipeline, so the newest run in
  it is the newest run of that pipeline.
  """
  store = _store(metadata_path)
  runs = store.get_contexts_by_type("pipeline_run")
  if not runs:
    raise LookupError(f"no pipeline run recorded in {metadata_path}")
  latest = max(runs, key=lambda c: c.create_time_since_epoch)
  return store, latest.name, store.get_executions_by_context(latest.id)


def finished_components_by_run(metadata_path: str
                                ) -> list[tuple[str, frozenset[str]]]:
  """Each run in an MLMD store, oldest first, with the components it
  finished: completed, or cached (a partial run records the nodes it took
  from an earlier run as cached, with their outputs)."""
  store = _store(metadata_path)
  runs = sorted(store.get_contexts_by_type("pipeline_run"),
                key=lambda context: context.create_time_since_epoch)
  finished_states = (metadata_store_pb2.Execution.COMPLETE,
                     metadata_store_pb2.Execution.CACHED)
  return [(run.name, frozenset(
      _component_id(store, execution)
      for execution in store.get_executions_by_context(run.id)
      if execution.last_known_state in finished_states)) for run in runs]


def _component_id(store, execution) -> str:
  """The pipeline node id, from the execution's `node` context."""
  for context in store.get_contexts_by_execution(execution.id):
    if context.type == _NODE_CONTEXT_TYPE:
      return context.name.rsplit(".", 1)[-1]
  return execution.type


def _output_artifacts(store, execution_ids: list[int]):
  events = store.get_events_by_execution_ids(execution_ids)
  output_ids = [e.artifact_id for e in events
                if e.type == metadata_store_pb2.Event.OUTPUT]
  return {a.id: a for a in store.get_artifacts_by_id(output_ids)}, events


def slice_name(slice_key) -> str:
  """`overall`, or `column=value, ...` for a TFMA slice key."""
  return ("overall" if not slice_key else
          ", ".join(f"{column}={value}" for column, value in slice_key))


def _sliced_metrics(evaluation_uri: str) -> dict[tuple, dict[str, float]]:
  """slice -> 'output/metric' -> value of a TFMA output, NaNs dropped."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  return {slice_key: {name: value for name, value in row.items()
                      if not math.isnan(value)}
          for slice_key, row in eval_results.flatten_metrics(
              tfma.load_eval_result(evaluation_uri)).items()}


def _execution_property(store, executions, component: str, name: str) -> str:
  """A string exec property of `component`'s execution, "" if none."""
  for execution in executions:
    if (_component_id(store, execution) == component and
        name in execution.custom_properties):
      return execution.custom_properties[name].string_value
  return ""


def _model_family(store, executions) -> str:
  custom_config = _execution_property(store, executions, _TRAINER,
                                      _CUSTOM_CONFIG_PROPERTY)
  if not custom_config:
    return ""
  return (json.loads(custom_config) or {}).get(families.FAMILY_KEY, "")


def summarize(metadata_path: str) -> RunSummary:
  """Builds the summary of the newest run recorded in `metadata_path`."""
  store, run_id, executions = latest_run_executions(metadata_path)
  components = []
  for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
    seconds = (execution.last_update_time_since_epoch -
               execution.create_time_since_epoch) / 1000.0
    components.append(ComponentRun(
        _component_id(store, execution),
        _STATE_NAMES.get(execution.last_known_state, "unknown"), seconds,
        execution.create_time_since_epoch / 1000.0))

  artifacts_by_id, events = _output_artifacts(store, [e.id for e in executions])
  component_by_execution = {e.id: _component_id(store, e) for e in executions}
  artifacts = {}
  blessings = {}
  pushed_dir = None
  for event in events:
    if event.type != metadata_store_pb2.Event.OUTPUT:
      continue
    artifact = artifacts_by_id[event.artifact_id]
    key = event.path.steps[0].key if event.path.steps else "output"
    component = component_by_execution[event.execution_id]
    artifacts[f"{component}.{key}"] = artifact.uri
    if key == "blessing" and "blessed" in artifact.custom_properties:
      blessings[component] = bool(
          artifact.custom_properties["blessed"].int_value)
    if key == "pushed_model" and artifact.custom_properties.get(
        "pushed") and artifact.custom_properties["pushed"].int_value:
      pushed_dir = artifact.custom_properties["pushed_destination"].string_value
  return RunSummary(
      run_id, components, artifacts, _evaluation_metrics(artifacts),
      blessings.get(MODEL_SELECTOR, blessings.get(
          BASELINE_GATE, blessings.get(MODEL_EVALUATOR))), pushed_dir,
      baseline_metrics=_baseline_metrics(artifacts),
      baseline_gate=_baseline_gate(artifacts),
      selection=_selection(artifacts),
      baseline_failures=_baseline_failures(artifacts),
      learning_curves=_learning_curves(artifacts),
      item_images=_item_images(artifacts),
      split=_execution_property(store, executions, _EXAMPLE_GEN,
                                _SPLIT_PROPERTY),
      gate_metric=_gate_metric(artifacts),
      model_family=_model_family(store, executions))


def _evaluation_metrics(artifacts: dict[str, str]) -> dict:
  uri = artifacts.get(f"{MODEL_EVALUATOR}.evaluation")
  if not uri or not storage.isdir(uri):
    return {}
  return {slice_name(slice_key): row
          for slice_key, row in _sliced_metrics(uri).items()}


def _gate_metric(artifacts: dict[str, str]) -> str:
  """The retrieval metric the model's Evaluator gates on, "" if none."""
  uri = artifacts.get(f"{MODEL_EVALUATOR}.evaluation")
  if not uri or not storage.isdir(uri):
    return ""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  for spec in tfma.load_eval_result(uri).config.metrics_specs:
    for metric in spec.metrics:
      if metric.per_slice_thresholds and metric.config:
        return json.loads(metric.config).get("name", "")
  return ""


def _baseline_evaluations(artifacts: dict[str, str]) -> dict[str, str]:
  """Baseline family -> the URI of its Evaluator's output, where written."""
  evaluations = {}
  for name, uri in sorted(artifacts.items()):
    component, _, key = name.partition(".")
    if (component.startswith(BASELINE_EVALUATOR_PREFIX) and
        key == "evaluation" and storage.isdir(uri)):
      evaluations[component[len(BASELINE_EVALUATOR_PREFIX):]] = uri
  return evaluations


def _baseline_metrics(artifacts: dict[str, str]) -> dict:
  return {family: _sliced_metrics(uri).get((), {})
          for family, uri in _baseline_evaluations(artifacts).items()
          if baseline_fit.read_failure(uri) is None}


def _baseline_failures(artifacts: dict[str, str]) -> dict[str, str]:
  failures = {family: baseline_fit.read_failure(uri)
              for family, uri in _baseline_evaluations(artifacts).items()}
  return {family: failure.in_words() for family, failure in failures.items()
          if failure is not None}


def _baseline_gate(artifacts: dict[str, str]):
  uri = artifacts.get(f"{BASELINE_GATE}.blessing")
  if not uri:
    return None
  return baseline_gate_lib.read_comparison(uri)


def _selection(artifacts: dict[str, str]):
  uri = artifacts.get(f"{MODEL_SELECTOR}.blessing")
  return model_selector.read_selection(uri) if uri else None


def _read_model_runs(artifacts: dict[str, str], read) -> dict:
  """Trainer component -> `read(its ModelRun directory)`, where not None."""
  found = {}
  for name, uri in artifacts.items():
    component, _, key = name.partition(".")
    if key == "model_run":
      value = read(uri)
      if value is not None:
        found[component] = value
  return found


def _learning_curves(artifacts: dict[str, str]) -> dict:
  from models import learning_curve  # pylint: disable=g-import-not-at-top
  return _read_model_runs(artifacts, learning_curve.read)


def _item_images(artifacts: dict[str, str]) -> dict:
  from transforms import item_images  # pylint: disable=g-import-not-at-top
  return _read_model_runs(artifacts, item_images.read_summary)
