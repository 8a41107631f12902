"""Tests for the report's plots, on a small hand-made evaluation.

The e2e tests in html_page_test draw them from real Evaluator outputs; these
check, in a second, that every plot renders headless to a PNG file.
"""

import pytest
import tensorflow_model_analysis as tfma

from models import learning_curve
from tfx_pipeline import evaluation
from tfx_pipeline.report import plots
from tfx_pipeline.report import tfma_output

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(recall: float) -> tfma_output.Metrics:
  """Every metric at `recall` (most-popular at half), overall and 2 slices."""
  metrics = {}
  for slice_key, examples in (
      (tfma_output.OVERALL, 100),
      ((("user_activity_bucket", "light"),), 40),
      ((("user_activity_bucket", "heavy"),), 60)):
    row = {f"{evaluation.MODEL_OUTPUT}/example_count": examples}
    for name in evaluation.metric_names():
      row[f"{evaluation.MODEL_OUTPUT}/{name}"] = recall
      row[f"{evaluation.BASELINE_OUTPUT}/{name}"] = recall / 2
    metrics[slice_key] = row
  return metrics


@pytest.fixture
def candidate():
  return tfma_output.Evaluation(
      uri="candidate", model_location="model", metrics=_metrics(0.4),
      blessed_model_location="blessed", blessed_model_metrics=_metrics(0.3),
      validation=tfma.ValidationResult(validation_ok=True), thresholds=[])


def test_every_plot_writes_the_png_it_names(candidate, tmp_path):
  written = [
      plots.plot_recall_curve(candidate, tmp_path),
      plots.plot_slices(candidate, tmp_path),
      plots.plot_blessed_model_comparison(candidate, tmp_path),
      plots.plot_run_comparison(candidate, candidate,
                                evaluation.metric_names(), tmp_path),
  ]
  assert written == [plots.RECALL_CURVE_PNG, plots.SLICES_PNG,
                     plots.BLESSED_COMPARISON_PNG, plots.COMPARE_PNG]
  for name in written:
    assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC, name


@pytest.mark.parametrize("train_loss", [None, 0.5])
def test_learning_curve_plot_writes_a_png_named_after_its_trainer(
    tmp_path, train_loss):
  curve = learning_curve.LearningCurve(
      family="ease", metric="recall_at_50",
      points=[learning_curve.Point(step, value, train_loss)
              for step, value in ((10.0, 0.2), (100.0, 0.3), (1000.0, 0.25))],
      best=100.0, chosen={"l2": 100.0})
  name = plots.plot_learning_curve(curve, "BaselineTrainer_ease", tmp_path)
  assert name == "learning_curve_BaselineTrainer_ease.png"
  assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
