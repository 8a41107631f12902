"""End-to-end: the real pipeline, every component, on a MovieLens sample.

The tests read `pipeline_fixtures.sample_runs` (shared with the report
tests): a first run that must push (with the embedding benchmark and one
baseline Trainer), then a run whose gate cannot be met and so must not push.
A re-run of the first must come from the MLMD cache. The default gate is
also run (`tests.evaluator_gate`, no pipeline run) on a worse stand-in of
the first run's model, against that model as the last blessed one.
"""

import glob
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from models import families
from models import serving_names
from models import trainer as trainer_lib
from offline_eval import probes
from serving import scann_index
from tests import evaluator_gate
from tests import pipeline_fixtures
from tfx_pipeline.components import embedding_benchmark
from tfx_pipeline import evaluation
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary
from tfx_pipeline import serving_demo

pytestmark = pytest.mark.e2e

ALL_COMPONENTS = {
    "InteractionExampleGen", "StatisticsGen", "ImportSchemaGen",
    "ExampleValidator", "AnomaliesGate", "Transform", "Trainer",
    "latest_blessed_model_resolver", "Evaluator", "ScannIndexGen", "Pusher",
    "BaselineTrainer_guim_k2", "EmbeddingBenchmark",
}
# Ranks the demoted stand-in adds to every target's rank: none stays in the
# top 50, so Recall@50 (the default gate metric) falls to 0.
DEMOTION = 50
# Components whose inputs do not change between identical runs.
CACHEABLE = {"InteractionExampleGen", "StatisticsGen", "ImportSchemaGen",
             "ExampleValidator", "AnomaliesGate", "Transform", "Trainer",
             "ScannIndexGen", "BaselineTrainer_guim_k2", "EmbeddingBenchmark"}


@pytest.fixture
def first_run(sample_runs):
  return sample_runs.blessed_config, sample_runs.blessed


def test_every_component_runs_and_the_model_is_pushed(sample_runs):
  config, summary = sample_runs.blessed_config, sample_runs.blessed
  states = {run.component: run.state for run in summary.components}
  assert set(states) == ALL_COMPONENTS
  assert all(state == "complete" for state in states.values()), states
  assert summary.blessed is True
  versions = sample_runs.versions_before_failing
  assert len(versions) == 1 and versions[0].isdigit()
  assert summary.pushed_dir == os.path.join(config.push_dir, versions[0])
  overall = summary.metrics["overall"]
  for metric in ("recall_at_10", "recall_at_50", "recall_at_100", "ndcg_at_10"):
    assert 0.0 <= overall[f"target_rank/{metric}"] <= 1.0
    assert 0.0 <= overall[f"popularity_target_rank/{metric}"] <= 1.0
  assert overall["target_rank/example_count"] == pipeline_fixtures.SAMPLE_USERS
  assert any(name.startswith("user_activity_bucket=") for name in summary.metrics)
  assert any(name.startswith("item_popularity_bucket=") for name in summary.metrics)


def test_embedding_benchmark_scores_the_model_and_its_baseline(first_run):
  config, _ = first_run
  (report_dir,) = glob.glob(os.path.join(config.pipeline_root,
                                         "EmbeddingBenchmark", "report", "*"))
  with open(os.path.join(report_dir, embedding_benchmark.REPORT_JSON)) as f:
    report = json.load(f)
  assert list(report["metrics"]) == ["two_tower", "guim_k2", "random",
                                     "most_popular"]
  assert report["user_vectors_per_user"] == {"two_tower": 1, "guim_k2": 2}
  assert report["num_users"] == pipeline_fixtures.SAMPLE_USERS
  for row in ("two_tower", "guim_k2", "random"):
    assert set(report["metrics"][row]) == {
        task["name"] for task in probes.MOVIELENS_TASKS}
  (baseline_model,) = glob.glob(os.path.join(
      config.pipeline_root, "BaselineTrainer_guim_k2", "model", "*"))
  info = trainer_lib.read_model_info(baseline_model)
  # The score its early stopping picked the epoch by, for ModelSelector.
  validation = info.pop(trainer_lib.VALIDATION_KEY)
  assert validation["metric"] == "recall_at_50"
  assert 0.0 <= validation["value"] <= 1.0
  # And every metric the run's selection weighs, at the same epoch.
  assert set(validation["metrics"]) == {"recall_at_10", "recall_at_50",
                                        "ndcg_at_10"}
  assert validation["metrics"]["recall_at_50"] == validation["value"]
  assert info == {
      "model_family": "guim", "label": "guim_k2", "seed": config.seed,
      "hparams": {**families.get("guim").hparams_known(config.hparams),
                  "num_interests": 2}}


def test_pushed_model_serves_top_k_for_a_raw_request(first_run):
  config, summary = first_run
  loaded = tf.saved_model.load(summary.pushed_dir)
  history = [["50", "181", "258", "", ""], ["1", "", "", "", ""]]
  request = {
      "user_id": tf.constant(["1", "never-seen-user"]),
      "history_item_ids": tf.constant(history),
      "timestamp": tf.constant([893286638, 893286638], tf.int64),
  }
  for k in (10, 100):
    response = loaded.signatures[serving_names.retrieve_top(k)](**request)
    ids = response[serving_names.ITEM_IDS].numpy().astype(str)
    scores = response[serving_names.SCORES].numpy()
    assert ids.shape == (2, k)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted"
    for row, seen in zip(ids, history):
      assert len(set(row)) == k
      assert not set(row) & set(seen), "history items must be excluded"
      assert "" not in set(row)
  index = scann_index.ScannIndex.load(summary.pushed_dir)
  scann_ids, _ = index.search(
      loaded.signatures[serving_names.QUERY_EMBEDDING](**request)[
          serving_names.EMBEDDING].numpy(),
      k=10, exclude_ids=[set(h) - {""} for h in history])
  exact = loaded.signatures[serving_names.retrieve_top(10)](**request)[
      serving_names.ITEM_IDS].numpy()
  overlap = np.mean([len(set(a) & set(b.astype(str))) / 10
                     for a, b in zip(scann_ids, exact)])
  assert overlap >= 0.8, "the pushed ScaNN index must agree with brute force"
  embedding = loaded.signatures[serving_names.QUERY_EMBEDDING](**request)[
      serving_names.EMBEDDING]
  candidates = loaded.signatures[serving_names.CANDIDATE_EMBEDDING](
      item_id=tf.constant(["50"]), item_title=tf.constant(["Star Wars 1977"]),
      item_categories=tf.constant([["Action", "Sci-Fi"]]))[
          serving_names.EMBEDDING]
  assert embedding.shape[0] == 2 and embedding.shape[1] == candidates.shape[1]


def test_pushed_model_answers_over_grpc_with_titles(first_run):
  config, _ = first_run
  report = serving_demo.recommend_for_eval_users(config, num_users=2, k=10)
  assert report.count("held-out next item:") == 2
  assert report.count("\n  10. ") == 2, report
  # MovieLens titles end with the release year, ids alone would not.
  assert re.search(r"\n   1\. .+ (19|20)\d\d \(-?\d\.\d{3}\)", report), report
  assert report.endswith("Server stopped.")


def test_rerun_is_served_from_the_mlmd_cache(first_run):
  config, _ = first_run
  local_runner.run(config)
  summary = run_summary.summarize(config.metadata_path)
  states = {run.component: run.state for run in summary.components}
  assert {c: states[c] for c in CACHEABLE} == {c: "cached" for c in CACHEABLE}


def test_a_model_failing_the_gate_is_not_pushed(sample_runs):
  summary = sample_runs.failing
  states = {run.component: run.state for run in summary.components}
  assert states["Evaluator"] == "complete"
  assert summary.blessed is False
  assert summary.pushed_dir is None
  assert (sample_runs.versions_after_failing ==
          sample_runs.versions_before_failing)


def test_the_trained_model_beats_most_popular(sample_runs):
  # The Evaluator scores most-popular by the same signature and metrics.
  overall = sample_runs.blessed.metrics["overall"]
  for metric in ("recall_at_10", "recall_at_50", "recall_at_100", "ndcg_at_10"):
    assert (overall[f"target_rank/{metric}"] >
            overall[f"popularity_target_rank/{metric}"]), metric


def _only_artifact(pipeline_root: str, component: str, output: str) -> str:
  (uri,) = glob.glob(os.path.join(pipeline_root, component, output, "*"))
  return uri


def test_the_default_gate_rejects_a_worse_model_by_bound_and_by_regression(
    sample_runs, tmp_path):
  config = sample_runs.blessed_config  # The default GateConfig.
  trained = _only_artifact(config.pipeline_root, "Trainer", "model")
  demoted = evaluator_gate.save_evaluate_variant(
      trained, str(tmp_path / "demoted"), lambda examples, outputs: {
          serving_names.TARGET_RANK:
              outputs[serving_names.TARGET_RANK] + DEMOTION,
          serving_names.POPULARITY_TARGET_RANK:
              outputs[serving_names.POPULARITY_TARGET_RANK]})
  result = evaluator_gate.run_gate(
      _only_artifact(config.pipeline_root, "InteractionExampleGen",
                     "examples"),
      demoted, trained, evaluation.eval_config(config), str(tmp_path / "gate"))
  gated = f"{evaluation.MODEL_OUTPUT}/{config.gate.metric}"
  assert result.metrics[gated] == 0.0
  assert not result.blessed
  # Below the lower bound, and worse than the blessed model by more than
  # max_regression: each threshold rejects it.
  assert result.failures == {(config.gate.metric, "value"),
                             (config.gate.metric, "change")}
