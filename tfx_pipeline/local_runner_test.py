"""Tests for the local runner's choice of nodes when a stopped run goes on
(the partial runs themselves run in `benchmarks/pipeline_benchmark`'s)."""

import os

from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline import pipeline
from tfx_pipeline import run_summary


def _summary_of(states):
  return run_summary.RunSummary(
      run_id="stopped", components=[
          run_summary.ComponentRun(component, state, 1.0)
          for component, state in states.items()],
      artifacts={}, metrics={}, blessed=None, pushed_dir=None)


def test_unfinished_nodes_are_every_node_the_latest_run_did_not_complete(
    tmp_path, monkeypatch):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  os.makedirs(config.dataset_dir)
  every_node = [node.id for node in
                pipeline.create_pipeline(config).components]
  # A run stopped while the Trainer ran, after the data steps and one
  # baseline had completed and another had failed.
  done = ["InteractionExampleGen", "StatisticsGen", "BaselineTrainer_ease"]
  monkeypatch.setattr(run_summary, "summarize", lambda path: _summary_of({
      **{node: "complete" for node in done},
      "BaselineTrainer_item_knn": "failed", "Trainer": "running"}))
  unfinished = local_runner.unfinished_nodes(config)
  assert unfinished == [node for node in every_node if node not in done]
  assert {"Trainer", "BaselineTrainer_item_knn", "Pusher"} <= set(unfinished)
