"""End-to-end: `ease` and `item_knn` in one pipeline run, one gated on the other.

One run on the MovieLens sample (`pipeline_fixtures.write_movielens_sample`):
`item_knn` is the model, `ease` its classical baseline (its own
`BaselineTrainer_ease` and `Evaluator_ease`), and `gate.baseline=ease` makes
the Pusher read BaselineGate's blessing. On this sample EASE^R beats item-kNN,
so the Evaluator blesses the model (fresh workspace, bound 0.05) but the
BaselineGate does not, and nothing is pushed. Both families were trained by
the pipeline's Trainer (`models.trainer.run_fn`), tuning their
hyperparameters on validation, and each export is then checked the way the
Evaluator, the Pusher's consumers and the gRPC server use it: `evaluate` on
the raw eval examples beats most-popular on Recall@50, the SavedModel loads
and answers in a bare TensorFlow process, and `serving.server` serves it like
any retrieval model. The summary and the HTML report show the model beside
its baselines and both Trainers' learning curves. Two more runs in the same
workspace give EASE^R settings it cannot fit (the exact solver under a
memory budget no catalogue fits): gated on it, the run refuses to push and
says why; ungated, the model is evaluated and pushed and the summary and
report say that the baseline did not fit. A fourth run swaps the roles:
`ease`, gated on `item_knn`, beats it, so BaselineGate blesses it and the
Pusher pushes the Trainer's model. A fifth run selects what to push
(`baselines.select_best`): `item_knn` ungated beside `ease`, which has the
higher mean relative validation score (Recall@10, Recall@50, NDCG@10), so
the Pusher pushes `ease`'s export and the summary says why. The topology of these families
(no ScaNN index, the Trainer's model pushed) is checked in
`tfx_pipeline/pipeline_test.py`.
"""

import dataclasses
import filecmp
import glob
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from models import export_testing
from models.item_item import trainer as item_item_trainer
from models import serving_names
from serving import testing_grpc
from tests import pipeline_fixtures
from tfx_pipeline.components import model_selector
from tfx_pipeline import config as config_lib
from tfx_pipeline import evaluation
from tfx_pipeline import local_runner
from tfx_pipeline.report import html_page
from tfx_pipeline.report import run_summary
from tfx_pipeline.report import summary_text
from tfx_pipeline import retrieval_metrics

# Three pipeline runs share a workspace; on a loaded machine the fixture that
# runs the last two takes more than the suite's 900 s default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

# The Trainer's file layout: the Pusher copies `Format-Serving/`.
_SERVING_SUBDIR = "Format-Serving"
_RECALL_K = 50
_MODEL, _BASELINE = "item_knn", "ease"
# Where each family's model is in the run.
_MODEL_ARTIFACTS = {_MODEL: "Trainer.model",
                    _BASELINE: f"BaselineTrainer_{_BASELINE}.model"}
# EASE^R settings its fit refuses: the exact solver under a budget of 1 kB.
# λ is fixed, so that the refusal is the final fit's, not the λ search's.
_UNFITTABLE_BASELINE = {"solver": "exact", "memory_budget_gb": 1e-6,
                        "l2": 100.0}


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
  """(config, summary) of item_knn gated on ease, on the MovieLens sample."""
  dataset_dir = pipeline_fixtures.write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"))
  config = pipeline_fixtures.sample_config(
      tmp_path_factory.mktemp("workspace"), dataset_dir, model_family=_MODEL,
      baselines=config_lib.BaselinesConfig(families=[_BASELINE]),
      gate=config_lib.GateConfig(baseline=_BASELINE))
  config.hparams = {}
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path)


@pytest.fixture(scope="module")
def unfitted_baseline_runs(gated_run):
  """Two runs after `gated_run`, in its workspace, where the baseline cannot
  fit: gated on it, then with the default gate alone. Returns the gated
  run's summary and the versions pushed when it ended, the ungated run's
  summary, its config and the versions pushed when it ended."""
  config, _ = gated_run
  unfittable = dataclasses.replace(config, baselines=config_lib.BaselinesConfig(
      families=[_BASELINE], hparams={_BASELINE: _UNFITTABLE_BASELINE}))
  local_runner.run(unfittable)
  gated = run_summary.summarize(config.metadata_path)
  pushed_by_gated = pipeline_fixtures.pushed_versions(config.push_dir)
  ungated = dataclasses.replace(unfittable, gate=config_lib.GateConfig())
  local_runner.run(ungated)
  return (gated, pushed_by_gated, run_summary.summarize(config.metadata_path),
          ungated, pipeline_fixtures.pushed_versions(config.push_dir))


@pytest.fixture(scope="module")
def beaten_baseline_run(unfitted_baseline_runs):
  """A fourth run in the same workspace, the roles swapped: `ease` is the
  model, gated on `item_knn`, which it beats on this sample. What the other
  runs computed (examples, Transform) comes from the cache. Returns the run's
  config, its summary and the versions pushed before it."""
  _, _, _, ungated, pushed_before = unfitted_baseline_runs
  config = dataclasses.replace(
      ungated, model_family=_BASELINE,
      baselines=config_lib.BaselinesConfig(families=[_MODEL]),
      gate=config_lib.GateConfig(baseline=_MODEL))
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path), pushed_before


@pytest.fixture(scope="module")
def selected_baseline_run(beaten_baseline_run):
  """A fifth run in the same workspace: `item_knn` beside `ease` as in
  `gated_run` (its Trainers come from the cache), without BaselineGate, so
  that ModelSelector picks between them on validation. The Evaluator may let
  the model fall below the last blessed one (`ease`, pushed by the fourth
  run): the selection is what is checked. Returns the run's config, its
  summary and the versions pushed before it."""
  config, _, _ = beaten_baseline_run
  pushed_before = pipeline_fixtures.pushed_versions(config.push_dir)
  config = dataclasses.replace(
      config, model_family=_MODEL,
      baselines=config_lib.BaselinesConfig(families=[_BASELINE]),
      gate=config_lib.GateConfig(max_regression=1.0))
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path), pushed_before


@pytest.fixture(scope="module", params=sorted(_MODEL_ARTIFACTS))
def trained(request, gated_run):
  """(family, serving dir, run summary) of a model the run trained."""
  _, summary = gated_run
  return (request.param,
          os.path.join(summary.artifacts[_MODEL_ARTIFACTS[request.param]],
                       _SERVING_SUBDIR),
          summary)


def test_a_model_that_does_not_beat_its_baseline_is_not_pushed(gated_run):
  config, summary = gated_run
  states = {run.component: run.state for run in summary.components}
  assert {"Trainer", "BaselineTrainer_ease", "Evaluator", "Evaluator_ease",
          "BaselineGate", "Pusher"} <= set(states)
  assert all(state == "complete" for state in states.values()), states
  # The Evaluator blessed the model: only the baseline comparison refuses it.
  assert os.path.isfile(os.path.join(summary.artifacts["Evaluator.blessing"],
                                     "BLESSED"))
  gate = summary.baseline_gate
  overall = summary.metrics["overall"]
  assert gate.evaluator_blessed and gate.metric == config.gate.metric
  assert gate.model_value == overall[
      f"{evaluation.MODEL_OUTPUT}/{config.gate.metric}"]
  assert gate.baseline_value == summary.baseline_metrics[_BASELINE][
      f"{evaluation.MODEL_OUTPUT}/{config.gate.metric}"]
  assert gate.model_value < gate.baseline_value and not gate.blessed
  assert summary.blessed is False and summary.pushed_dir is None
  assert pipeline_fixtures.pushed_versions(config.push_dir) == []


def test_summary_and_report_show_the_model_beside_its_baseline(gated_run):
  _, summary = gated_run
  text = summary_text.format_summary(
      summary, "metrics", [(_MODEL, evaluation.MODEL_OUTPUT),
                           ("most-popular", evaluation.BASELINE_OUTPUT)],
      evaluation.metric_names())
  lines = text.splitlines()
  assert "eval split protocol: leave_last_out" in lines
  for label in (_MODEL, _BASELINE, "most-popular"):
    assert any(line.startswith(f"{label:24s} ") for line in lines), label
  assert any(line.startswith(
      f"strongest baseline by recall_at_50: {_BASELINE} ") and
             line.endswith(")") and "does not beat it" in line
             for line in lines), text
  # Both Trainers searched their hyperparameters on validation.
  assert set(summary.learning_curves) == {"Trainer", "BaselineTrainer_ease"}
  # Within their budgets, both refitted the chosen setting on every row.
  ease_chosen = summary.learning_curves["BaselineTrainer_ease"].chosen
  assert ease_chosen.keys() == {"l2", "fitted_on"}
  knn_chosen = summary.learning_curves["Trainer"].chosen
  assert knn_chosen.keys() == {"neighbours", "shrinkage", "fitted_on"}
  assert ease_chosen["fitted_on"] == knn_chosen["fitted_on"] == (
      item_item_trainer.FITTED_ON_EVERY_ROW)
  page = open(html_page.write_run_report(summary), encoding="utf-8").read()
  assert "<h2>Model and baselines</h2>" in page
  assert "<strong>BaselineGate</strong>" in page and "not blessed" in page
  assert "learning_curve_BaselineTrainer_ease.png" in page
  assert "learning_curve_Trainer.png" in page
  assert "eval split protocol" in page


def test_a_baseline_that_cannot_fit_is_reported_and_the_gate_refuses(
    unfitted_baseline_runs):
  gated, pushed_by_gated, _, _, _ = unfitted_baseline_runs
  states = {run.component: run.state for run in gated.components}
  # What the first run already computed comes from the MLMD cache.
  assert set(states.values()) <= {"complete", "cached"}, states
  assert states["BaselineTrainer_ease"] == "complete"
  (failure,) = gated.baseline_failures.items()
  assert failure[0] == _BASELINE
  # The fit's own words, and the flag that reaches a baseline's settings.
  assert "memory_budget_gb" in failure[1] and "ValueError" in failure[1]
  assert "--set 'baselines.hparams=" in failure[1]
  assert _BASELINE not in gated.baseline_metrics
  gate = gated.baseline_gate
  assert gate.baseline_value is None and not gate.blessed
  assert "did not fit" in gate.in_words()
  assert gated.blessed is False and gated.pushed_dir is None
  assert pushed_by_gated == []


def test_without_the_baseline_gate_the_model_is_pushed_and_the_failure_shown(
    unfitted_baseline_runs):
  _, _, ungated, config, pushed_by_ungated = unfitted_baseline_runs
  states = {run.component: run.state for run in ungated.components}
  assert set(states.values()) <= {"complete", "cached"}, states
  assert "BaselineGate" not in states
  assert ungated.blessed is True
  (version,) = pushed_by_ungated
  assert ungated.pushed_dir == os.path.join(config.push_dir, version)
  text = summary_text.format_summary(
      ungated, "metrics", [(_MODEL, evaluation.MODEL_OUTPUT)],
      evaluation.metric_names())
  assert f"{_BASELINE} did not fit" in text, text
  page = open(html_page.write_run_report(ungated), encoding="utf-8").read()
  assert "did not fit" in page


def test_a_model_that_beats_its_baseline_is_blessed_and_pushed(
    beaten_baseline_run):
  config, summary, pushed_before = beaten_baseline_run
  states = {run.component: run.state for run in summary.components}
  assert {"BaselineTrainer_item_knn", "Evaluator_item_knn", "BaselineGate",
          "Pusher"} <= set(states)
  assert set(states.values()) <= {"complete", "cached"}, states
  assert states["BaselineGate"] == states["Pusher"] == "complete"
  gate = summary.baseline_gate
  assert gate.baseline == _MODEL and gate.evaluator_blessed
  assert gate.model_value > gate.baseline_value and gate.blessed
  assert os.path.isfile(os.path.join(summary.artifacts["BaselineGate.blessing"],
                                     "BLESSED"))
  assert summary.blessed is True
  (version,) = set(pipeline_fixtures.pushed_versions(config.push_dir)) - set(
      pushed_before)
  assert summary.pushed_dir == os.path.join(config.push_dir, version)
  # What was pushed is this run's model, `ease`'s export.
  assert filecmp.cmp(
      os.path.join(summary.artifacts["Trainer.model"], _SERVING_SUBDIR,
                   "saved_model.pb"),
      os.path.join(summary.pushed_dir, "saved_model.pb"), shallow=False)


def test_the_baseline_with_the_better_validation_score_is_pushed(
    selected_baseline_run):
  config, summary, pushed_before = selected_baseline_run
  states = {run.component: run.state for run in summary.components}
  assert states["ModelSelector"] == states["Pusher"] == "complete", states
  assert "BaselineGate" not in states
  selection = summary.selection
  assert [c.label for c in selection.candidates] == [_MODEL, _BASELINE]
  curves = {"Trainer": selection.candidates[0],
            f"BaselineTrainer_{_BASELINE}": selection.candidates[1]}
  # The scores compared are each Trainer's own, at the setting it kept:
  # every metric the rule weighs.
  for component, candidate in curves.items():
    curve = summary.learning_curves[component]
    assert (candidate.metric, candidate.validation, candidate.metrics) == (
        curve.metric, curve.best_validation, curve.best_point.metrics)
    assert set(candidate.metrics) == set(model_selector.SELECTION_METRICS)
  relative = model_selector.relative_scores(selection.candidates)
  assert relative[_BASELINE] > relative[_MODEL], relative
  assert selection.selected == _BASELINE and summary.blessed is True
  (version,) = set(pipeline_fixtures.pushed_versions(config.push_dir)) - set(
      pushed_before)
  assert summary.pushed_dir == os.path.join(config.push_dir, version)
  baseline_model = summary.artifacts[f"BaselineTrainer_{_BASELINE}.model"]
  assert filecmp.cmp(
      os.path.join(baseline_model, _SERVING_SUBDIR, "saved_model.pb"),
      os.path.join(summary.pushed_dir, "saved_model.pb"), shallow=False)
  text = summary_text.format_summary(
      summary, "metrics", [(_MODEL, evaluation.MODEL_OUTPUT)],
      evaluation.metric_names())
  assert f"  selected: {_BASELINE} ({selection.why})" in text.splitlines()
  assert f"  copied from: {baseline_model}" in text.splitlines()
  assert "ModelSelector's blessing" in text


def _raw_eval_examples(summary) -> list[bytes]:
  files = glob.glob(os.path.join(summary.artifacts["InteractionExampleGen.examples"],
                                 "Split-eval", "*.gz"))
  return [record.numpy() for record in
          tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_evaluate_beats_most_popular_on_recall_at_50(trained):
  family, serving_dir, summary = trained
  examples = _raw_eval_examples(summary)
  ranks = tf.saved_model.load(serving_dir).signatures[serving_names.EVALUATE](
      examples=tf.constant(examples))
  model = retrieval_metrics.recall_at_k(
      ranks[serving_names.TARGET_RANK].numpy(), _RECALL_K).mean()
  popular = retrieval_metrics.recall_at_k(
      ranks[serving_names.POPULARITY_TARGET_RANK].numpy(), _RECALL_K).mean()
  print(f"{family}: recall@{_RECALL_K} {model:.4f}, most-popular "
        f"{popular:.4f} on {len(examples)} eval users")
  assert model > popular


def test_loads_and_answers_in_a_bare_tensorflow_process(trained):
  _, serving_dir, summary = trained
  export_testing.run_in_bare_tensorflow(f"""
      import tensorflow as tf
      loaded = tf.saved_model.load({serving_dir!r})
      top = loaded.signatures[{serving_names.DEFAULT!r}](
          user_id=tf.constant(["1"]), history_item_ids=tf.constant([["50"]]),
          timestamp=tf.constant([881250949], tf.int64))
      assert top[{serving_names.ITEM_IDS!r}].shape == (1, 10), top
      assert b"50" not in top[{serving_names.ITEM_IDS!r}].numpy()[0].tolist()
      ranks = loaded.signatures[{serving_names.EVALUATE!r}](**{{
          {serving_names.EXAMPLES!r}:
              tf.constant({_raw_eval_examples(summary)[:3]!r})}})
      assert ranks[{serving_names.TARGET_RANK!r}].shape == (3,), ranks
      """, cwd=os.path.dirname(serving_dir))


def test_the_grpc_server_answers_retrieve_and_query_embedding(trained,
                                                             tmp_path):
  _, serving_dir, _ = trained
  with testing_grpc.serve_version_1(pathlib.Path(serving_dir),
                                    tmp_path) as handle:
    with testing_grpc.open_stubs(handle.address) as stubs:
      top = stubs.prediction.Predict(testing_grpc.predict_request(
          ["1"], [["50", "181"]]), timeout=30)
      embedding = stubs.prediction.Predict(testing_grpc.predict_request(
          ["1"], [["50", "181"]], signature=serving_names.QUERY_EMBEDDING),
          timeout=30)
  item_ids, scores = testing_grpc.retrieved(top)
  assert len(item_ids) == 10 and not {"50", "181"} & set(item_ids)
  assert np.all(np.diff(scores) <= 0)
  # The query is the history's counts per item index: two items.
  query = tf.make_ndarray(embedding.outputs[serving_names.EMBEDDING])
  assert query.sum() == 2
