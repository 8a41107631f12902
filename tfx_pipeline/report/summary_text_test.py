"""Tests for the run summary's text: tables, baselines, curves, selection."""

import dataclasses

from models import learning_curve
from models import serving_names
from tfx_pipeline.components import baseline_gate
from tfx_pipeline.components import model_selector
from tfx_pipeline.report import html_page
from tfx_pipeline.report import run_summary
from tfx_pipeline.report import run_summary_test
from tfx_pipeline.report import summary_text
from transforms import item_images

_MODEL = serving_names.TARGET_RANK
_POPULAR = serving_names.POPULARITY_TARGET_RANK
_NAMES = run_summary_test.METRIC_NAMES
_summary = run_summary_test.sample_summary


def test_a_run_without_baselines_has_no_rows():
  summary = _summary(0.4)
  summary.baseline_metrics = {}
  assert run_summary.overall_scorers(summary, "two_tower", _NAMES) == []
  assert "baselines" not in summary_text.format_summary(
      summary, "metrics", [("two_tower", _MODEL)], _NAMES)


def test_format_summary_shows_baselines_gate_curves_and_split():
  comparison = baseline_gate.Comparison(
      metric="recall_at_50", baseline="ease", model_value=0.29,
      baseline_value=0.3, evaluator_blessed=True)
  curve = learning_curve.LearningCurve(
      family="ease", metric="recall_at_50",
      points=[learning_curve.Point(10.0, 0.2),
              learning_curve.Point(100.0, 0.3)],
      best=100.0, chosen={"l2": 100.0})
  text = summary_text.format_summary(
      _summary(0.29, baseline_gate=comparison, split="leave_last_out",
               learning_curves={"BaselineTrainer_ease": curve}),
      "metrics", [("two_tower", _MODEL), ("most-popular", _POPULAR)], _NAMES)
  lines = text.splitlines()
  assert "eval split protocol: leave_last_out" in lines
  assert f"{'ease':24s} {0.12:12.4f} {0.3:12.4f}" in lines
  assert f"{'two_tower':24s} {0.1:12.4f} {0.29:12.4f}" in lines
  assert ("strongest baseline by recall_at_50: ease (0.3000); the model "
          "(two_tower, 0.2900) does not beat it (margin -0.0100)") in lines
  assert ("BaselineGate: not blessed: model recall_at_50 0.2900 does not "
          "beat ease 0.3000 (margin -0.0100)") in lines
  assert "BaselineTrainer_ease (ease): validation recall_at_50 on a split " \
      "carved from train" in lines
  assert f"{'100.0':5s} {'-':>12s} {0.3:12.4f}  <- best" in lines
  assert 'chosen: {"l2": 100.0}' in lines


def test_a_baseline_that_did_not_fit_is_named_with_its_reason():
  summary = _summary(0.4, baseline_failures={
      "ease": "ValueError: over memory_budget_gb=0.0 (peak RSS 300 MiB)."})
  del summary.baseline_metrics["ease"]
  lines = summary_text.format_summary(
      summary, "metrics", [("two_tower", _MODEL)], _NAMES).splitlines()
  assert ("ease did not fit, so it has no row: ValueError: over "
          "memory_budget_gb=0.0 (peak RSS 300 MiB).") in lines
  assert not any(line.startswith(f"{'ease':24s} ") for line in lines)
  # The strongest baseline is chosen among those that fitted.
  assert any(line.startswith("strongest baseline by recall_at_50: item_knn")
             for line in lines)


def test_a_trainer_stopped_by_its_epoch_budget_is_warned_about(tmp_path):
  # Validation still rose at the last epoch allowed.
  curve = learning_curve.LearningCurve(
      family="sasrec", metric="recall_at_50",
      points=[learning_curve.Point(1, 0.2, 6.1),
              learning_curve.Point(2, 0.3, 5.9)],
      best=2, chosen={"epoch": 2}, max_steps=2)
  summary = _summary(0.4, learning_curves={"Trainer": curve})
  warning = ("WARNING: Trainer: the best epoch is the last one allowed (2 of "
             "epochs=2): validation recall_at_50 was still improving; raise "
             "it with --hparam epochs=N")
  assert warning in summary_text.format_summary(
      summary, "metrics", [("sasrec", _MODEL)], _NAMES).splitlines()
  # The report's learning-curve section says the same.
  assert ("<strong>Warning:</strong> the best epoch is the last one allowed"
          in html_page._learning_curves_section(summary, str(tmp_path)))
  stopped_early = dataclasses.replace(curve, max_steps=5)
  assert "WARNING" not in summary_text.format_summary(
      _summary(0.4, learning_curves={"Trainer": stopped_early}), "metrics",
      [("sasrec", _MODEL)], _NAMES)


def test_selection_lines_show_every_metric_and_the_relative_score():
  metrics = {"recall_at_10": 0.1, "recall_at_50": 0.2, "ndcg_at_10": 0.05}
  selection = model_selector.select(
      model_selector.Candidate("sasrec", True, "recall_at_50", 0.2,
                               metrics=metrics, uri="/root/ScannIndexGen/7"),
      [model_selector.Candidate(
          "ease", False, "recall_at_50", 0.2,
          metrics={**metrics, "recall_at_10": 0.05}),
       model_selector.Candidate("item_knn", False,
                                reason="did not fit: killed")],
      model_blessed=True)
  lines = summary_text.selection_lines(selection)
  assert lines[1:] == [
      "  sasrec                 recall_at_10 0.1000, recall_at_50 0.2000, "
      "ndcg_at_10 0.0500; relative 1.0000",
      "  ease                   recall_at_10 0.0500, recall_at_50 0.2000, "
      "ndcg_at_10 0.0500; relative 0.8333",
      "  item_knn               not selectable: did not fit: killed",
      "  selected: sasrec (sasrec has the highest mean relative validation "
      "score: 1.0000 (against ease 0.8333))",
      "  copied from: /root/ScannIndexGen/7"]


def test_the_item_images_a_trainer_decoded_and_skipped_are_reported():
  images = item_images.DecodingSummary(
      images_uri="images.zip", height=96, width=64, items=3, decoded=1,
      resized=1, skipped={"missing": [{"item_id": "b", "path": "b.jpg",
                                       "reason": "no file"}],
                          "wrong_mode": [{"item_id": "c", "path": "c.png",
                                          "reason": "mode L"}]})
  summary = _summary(0.4, item_images={"PretrainTrainer": images})
  assert ("PretrainTrainer item images: 1 of 3 catalogue items' images "
          "decoded to 96x64 from images.zip (1 resized); skipped 2: 1 "
          "missing, 1 wrong_mode") in summary_text.format_summary(
              summary, "metrics", [("ranking", _MODEL)], _NAMES).splitlines()
