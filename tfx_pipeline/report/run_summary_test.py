"""Tests for the run summary: the model-vs-baselines rows, the runs read."""

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
import pytest

from models import serving_names
from tfx_pipeline.report import run_summary

_MODEL = serving_names.TARGET_RANK
_POPULAR = serving_names.POPULARITY_TARGET_RANK
METRIC_NAMES = ["recall_at_10", "recall_at_50"]


def sample_summary(model_recall_at_50, **extra):
  """A run with the model, two baselines and most-popular, overall."""
  return run_summary.RunSummary(
      run_id="run-1",
      components=[run_summary.ComponentRun("Trainer", "complete", 3.0)],
      artifacts={},
      metrics={"overall": {f"{_MODEL}/recall_at_10": 0.1,
                           f"{_MODEL}/recall_at_50": model_recall_at_50,
                           f"{_MODEL}/example_count": 120.0,
                           f"{_POPULAR}/recall_at_10": 0.05,
                           f"{_POPULAR}/recall_at_50": 0.2}},
      blessed=True, pushed_dir="/serving/retrieval/1",
      baseline_metrics={"item_knn": {f"{_MODEL}/recall_at_10": 0.08,
                                     f"{_MODEL}/recall_at_50": 0.25},
                        "ease": {f"{_MODEL}/recall_at_10": 0.12,
                                 f"{_MODEL}/recall_at_50": 0.3}},
      gate_metric="recall_at_50", **extra)


def test_rows_are_the_model_each_baseline_and_most_popular():
  scorers = run_summary.overall_scorers(sample_summary(0.4), "two_tower",
                                        METRIC_NAMES)
  assert [(s.label, s.is_model) for s in scorers] == [
      ("two_tower", True), ("ease", False), ("item_knn", False),
      ("most-popular", False)]
  assert scorers[1].metrics == {"recall_at_10": 0.12, "recall_at_50": 0.3}
  assert scorers[3].metrics == {"recall_at_10": 0.05, "recall_at_50": 0.2}
  assert run_summary.strongest_baseline(scorers, "recall_at_50").label == "ease"


@pytest.mark.parametrize("model_value, verdict", [
    (0.35, "beats it (margin +0.0500)"),
    (0.30, "does not beat it (margin +0.0000)"),
    (0.29, "does not beat it (margin -0.0100)")])
def test_the_verdict_names_the_strongest_baseline(model_value, verdict):
  scorers = run_summary.overall_scorers(sample_summary(model_value),
                                        "two_tower", METRIC_NAMES)
  assert run_summary.baseline_verdict(scorers, "recall_at_50") == (
      f"strongest baseline by recall_at_50: ease (0.3000); the model "
      f"(two_tower, {model_value:.4f}) {verdict}")


def test_finished_components_by_run_counts_completed_and_cached(tmp_path):
  # What a TFX partial run records (seen in the 10M x 1M point's store): the
  # nodes it took from the run it continued are executions in the new run,
  # cached, beside the ones it ran.
  path = str(tmp_path / "metadata.sqlite")
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = path
  store = mlmd.MetadataStore(connection)
  run_type = store.put_context_type(
      metadata_store_pb2.ContextType(name="pipeline_run"))
  node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
  execution_type = store.put_execution_type(
      metadata_store_pb2.ExecutionType(name="component"))
  states = metadata_store_pb2.Execution
  runs = {"run-1": {"Transform": states.COMPLETE, "Trainer": states.RUNNING},
          "run-2": {"Transform": states.CACHED, "Trainer": states.COMPLETE,
                    "Pusher": states.FAILED}}
  for run_name, components in runs.items():
    [run_id] = store.put_contexts([metadata_store_pb2.Context(
        type_id=run_type, name=run_name)])
    for component, state in components.items():
      [node_id] = store.put_contexts([metadata_store_pb2.Context(
          type_id=node_type, name=f"{run_name}-pipeline.{component}")])
      store.put_execution(
          metadata_store_pb2.Execution(type_id=execution_type,
                                       last_known_state=state),
          artifact_and_events=[],
          contexts=[metadata_store_pb2.Context(id=run_id, type_id=run_type,
                                               name=run_name),
                    metadata_store_pb2.Context(
                        id=node_id, type_id=node_type,
                        name=f"{run_name}-pipeline.{component}")])
  assert run_summary.finished_components_by_run(path) == [
      ("run-1", frozenset({"Transform"})),
      ("run-2", frozenset({"Transform", "Trainer"}))]
