"""Tests of Platt calibration."""

import numpy as np
import pytest

from data import features
from models.ctr import calibration


def test_fit_platt_recovers_known_parameters():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=20_000)
  labels = rng.random(20_000) < 1 / (1 + np.exp(-(2.0 * scores - 1.0)))
  slope, intercept = calibration.fit_platt(scores, labels)
  assert slope == pytest.approx(2.0, abs=0.1)
  assert intercept == pytest.approx(-1.0, abs=0.1)


def test_calibrate_scores_the_sample_in_batches():
  # Scores 3 x_i; labels from sigmoid(2 x - 1) = sigmoid((2/3) s - 1).
  rng = np.random.default_rng(1)
  x = rng.normal(size=5_000).astype(np.float32)
  sample = {"x": x, features.LABEL: (
      rng.random(5_000) < 1 / (1 + np.exp(-(2.0 * x - 1.0)))).astype(
          np.float32)}
  slope, intercept = calibration.calibrate(lambda rows: 3.0 * rows["x"],
                                           sample, batch_size=700)
  assert slope == pytest.approx(2.0 / 3.0, abs=0.06)
  assert intercept == pytest.approx(-1.0, abs=0.1)


def test_calibration_needs_sampled_negatives():
  # Checked before any scoring: the Trainer fails before it exports.
  def never_called(rows):
    raise AssertionError(rows)

  with pytest.raises(ValueError, match="ctr_negatives"):
    calibration.calibrate(never_called,
                          {features.LABEL: np.ones(3, np.float32)})
