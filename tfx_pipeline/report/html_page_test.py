"""Tests for the HTML evaluation report, on real Evaluator outputs.

The reports are built from the TFMA outputs of the session's two pipeline
runs on a MovieLens sample (`tests.pipeline_fixtures.sample_runs`): a first
run that is blessed (no earlier model to compare with), then a run whose
value threshold cannot be met, evaluated against the first run's model.
"""

import os
import re

import pytest
import tensorflow_model_analysis as tfma

from tests import pipeline_fixtures
from tfx_pipeline import cli
from tfx_pipeline import evaluation
from tfx_pipeline.report import html_page
from tfx_pipeline.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
UNREACHABLE_BOUND = pipeline_fixtures.UNREACHABLE_BOUND


@pytest.fixture
def runs(sample_runs):
  """(workspace, first run summary, failing run summary)."""
  return str(sample_runs.workspace), sample_runs.blessed, sample_runs.failing


def _read(path):
  with open(path, encoding="utf-8") as f:
    return f.read()


def _assert_self_contained_with_valid_images(path):
  page = _read(path)
  assert "<script" not in page and "://" not in page
  images = re.findall(r'<img src="([^"]+)"', page)
  assert images
  for name in images:
    assert "/" not in name  # relative, beside the page
    with open(os.path.join(os.path.dirname(path), name), "rb") as f:
      assert f.read(8) == PNG_MAGIC, name
  return page, images


@pytest.mark.e2e
def test_run_report_has_metrics_slices_plots_and_decision(runs):
  _, first, _ = runs
  path = html_page.write_run_report(first)
  uri = first.artifacts["Evaluator.evaluation"]
  assert path == os.path.join(uri, "report", "index.html")
  page, images = _assert_self_contained_with_valid_images(path)
  # Every neural Trainer of the run wrote its early-stopping curve.
  assert "Trainer" in first.learning_curves
  assert set(images) == {plots.RECALL_CURVE_PNG, plots.SLICES_PNG} | {
      plots.LEARNING_CURVE_PNG.format(component=component)
      for component in first.learning_curves}
  assert "<h2>Learning curves</h2>" in page
  for name in evaluation.metric_names():
    assert name in page
  for text in ("user_activity_bucket", "item_popularity_bucket", "item_type",
               "light", "heavy", "head", "most-popular", "Trainer"):
    assert text in page, text
  assert "<strong>Blessed</strong>" in page
  assert "at least 0.05" in page
  assert "no earlier blessed model" in page
  assert "Calibration and precision-recall curves" in page
  # The numbers are TFMA's own.
  overall = tfma.load_eval_result(uri).slicing_metrics
  recall = dict(overall)[()][evaluation.MODEL_OUTPUT][""]["recall_at_50"]
  assert f"{recall['doubleValue']:.4f}" in page


@pytest.mark.e2e
def test_failed_gate_report_says_why_and_compares_with_blessed_model(runs):
  _, first, failing = runs
  assert first.blessed is True and failing.blessed is False
  page, images = _assert_self_contained_with_valid_images(
      html_page.write_run_report(failing))
  assert plots.BLESSED_COMPARISON_PNG in images
  assert "<strong>Not blessed</strong>" in page
  assert re.search(r"overall: model recall_at_50 is \d\.\d{4}, but the gate "
                   rf"requires at least {UNREACHABLE_BOUND}\.", page)
  assert "last blessed model" in page and "change (TFMA diff)" in page
  assert "change vs the last blessed model &gt;= -0.01" in page


@pytest.mark.e2e
def test_compare_renders_two_runs_side_by_side(runs, tmp_path):
  _, first, failing = runs
  path = html_page.compare(first.artifacts["Evaluator.evaluation"],
                           failing.artifacts["Evaluator.evaluation"],
                           str(tmp_path / "compare"))
  page, images = _assert_self_contained_with_valid_images(path)
  assert images == [plots.COMPARE_PNG]
  assert "B - A" in page and "not blessed" in page
  for text in evaluation.metric_names() + ["user_activity_bucket", "tail"]:
    assert text in page, text


@pytest.mark.e2e
def test_cli_report_and_compare_print_the_paths(runs, sample_runs, tmp_path,
                                                capsys):
  workspace, _, failing = runs
  assert cli.main(["report", "--workspace", workspace, "--pipeline-name",
                   sample_runs.blessed_config.pipeline_name,
                   "--output-dir", str(tmp_path / "r")]) == 0
  assert capsys.readouterr().out.strip() == (
      f"HTML report: {tmp_path / 'r' / 'index.html'}")
  assert cli.main(["compare", failing.artifacts["Evaluator.evaluation"],
                   workspace, "--output-dir", str(tmp_path / "c")]) == 0
  assert capsys.readouterr().out.strip() == (
      f"HTML report: {tmp_path / 'c' / 'index.html'}")


def test_summary_and_report_find_the_runs_without_the_run_s_flags(
    runs, sample_runs, tmp_path, capsys):
  workspace, _, failing = runs
  # No --pipeline-name and no --dataset: the default pipeline has no runs
  # here, so every pipeline of the workspace is found.
  assert cli.main(["summary", "--workspace", workspace]) == 0
  out = capsys.readouterr().out
  name = sample_runs.blessed_config.pipeline_name
  assert out.startswith(f"Pipeline {name} (")
  # Its latest run: the failing one.
  assert f"Run {failing.run_id}" in out.splitlines()
  assert "most-popular" in out
  assert cli.main(["report", "--workspace", workspace, "--output-dir",
                   str(tmp_path / "r")]) == 0
  assert capsys.readouterr().out.strip().splitlines()[-1] == (
      f"HTML report: {tmp_path / 'r' / 'index.html'}")
