"""Reads a finished local run back from MLMD: timings, metrics, blessing, push.

Everything here comes from ML-Metadata and the artifacts it points at, so the
summary describes exactly what the run recorded.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional, Sequence

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

_NODE_CONTEXT_TYPE = "node"
_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    metadata_store_pb2.Execution.CANCELED: "canceled",
}


@dataclasses.dataclass
class ComponentRun:
  component: str
  state: str
  seconds: float


@dataclasses.dataclass
class RunSummary:
  """What one pipeline run did."""
  run_id: str
  components: list[ComponentRun]
  artifacts: dict[str, str]
  metrics: dict[str, dict[str, float]]  # slice -> metric -> value
  blessed: Optional[bool]
  pushed_dir: Optional[str]


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


def _metric_key(output_name: str, metric_name: str) -> str:
  return f"{output_name}/{metric_name}" if output_name else metric_name


def flatten_metrics(eval_result) -> dict[tuple, dict[str, float]]:
  """slice key -> 'output/metric' -> value, from a TFMA EvalResult."""
  table = {}
  for slice_key, metrics_by_output in eval_result.slicing_metrics:
    row = table.setdefault(tuple(slice_key), {})
    for output_name, by_sub_key in metrics_by_output.items():
      for metric_name, value in by_sub_key.get("", {}).items():
        if "doubleValue" in value:
          row[_metric_key(output_name, metric_name)] = value["doubleValue"]
  return table


def summarize(metadata_path: str) -> RunSummary:
  """Builds the summary of the newest run recorded in `metadata_path`."""
  store, run_id, executions = latest_run_executions(metadata_path)
  components = []
  for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
    seconds = (execution.last_update_time_since_epoch -
               execution.create_time_since_epoch) / 1000.0
    components.append(ComponentRun(
        _component_id(store, execution),
        _STATE_NAMES.get(execution.last_known_state, "unknown"), seconds))

  artifacts_by_id, events = _output_artifacts(store, [e.id for e in executions])
  component_by_execution = {e.id: _component_id(store, e) for e in executions}
  artifacts = {}
  blessed = pushed_dir = None
  metrics = {}
  for event in events:
    if event.type != metadata_store_pb2.Event.OUTPUT:
      continue
    artifact = artifacts_by_id[event.artifact_id]
    key = event.path.steps[0].key if event.path.steps else "output"
    component = component_by_execution[event.execution_id]
    artifacts[f"{component}.{key}"] = artifact.uri
    if key == "blessing" and "blessed" in artifact.custom_properties:
      blessed = bool(artifact.custom_properties["blessed"].int_value)
    if key == "pushed_model" and artifact.custom_properties.get(
        "pushed") and artifact.custom_properties["pushed"].int_value:
      pushed_dir = artifact.custom_properties["pushed_destination"].string_value
    if key == "evaluation" and os.path.isdir(artifact.uri):
      import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
      metrics = {
          slice_name(slice_key): {name: value for name, value in row.items()
                                  if not math.isnan(value)}
          for slice_key, row in flatten_metrics(
              tfma.load_eval_result(artifact.uri)).items()}
  return RunSummary(run_id, components, artifacts, metrics, blessed, pushed_dir)


def format_summary(summary: RunSummary, heading: str,
                   outputs: Sequence[tuple[str, str]],
                   metric_names: Sequence[str]) -> str:
  """Renders the summary as the plain-text tables the CLI prints.

  Args:
    summary: the run.
    heading: what the metrics table shows.
    outputs: `(row label, TFMA output name)` per scorer; "" for a model with
      a single unnamed output.
    metric_names: the metric columns.
  """
  lines = [f"Run {summary.run_id}", "", f"{'component':34s} {'state':9s} seconds"]
  for run in summary.components:
    lines.append(f"{run.component:34s} {run.state:9s} {run.seconds:7.1f}")
  lines += ["", heading,
            f"{'slice':44s} {'model':14s} " + " ".join(f"{m:>12s}" for m in metric_names)]
  for name, row in sorted(summary.metrics.items(),
                          key=lambda kv: (kv[0] != "overall", kv[0])):
    for label, output in outputs:
      values = [row.get(_metric_key(output, m)) for m in metric_names]
      if all(v is None for v in values):
        continue
      cells = " ".join(f"{v:12.4f}" if v is not None else f"{'-':>12s}" for v in values)
      lines.append(f"{name:44s} {label:14s} {cells}")
  overall = summary.metrics.get("overall", {})
  count = overall.get(_metric_key(outputs[0][1], "example_count"))
  if count is not None:
    lines.append(f"eval examples: {int(count)}")
  lines += ["",
            f"blessed: {summary.blessed}",
            f"pushed:  {summary.pushed_dir or 'no (not blessed, or push skipped)'}"]
  for name in ("Trainer.model", "Evaluator.evaluation", "Transform.transform_graph"):
    if name in summary.artifacts:
      lines.append(f"{name}: {summary.artifacts[name]}")
  return "\n".join(lines)
