"""Platt calibration: a CTR ranker's score turned into a click probability.

A score without a probability scale (SEMINAR's cosine over a temperature)
fails the Evaluator's log-loss bound however well it ranks; the calibrated
probability is `sigmoid(slope * score + intercept)`, with `(slope,
intercept)` fitted on labelled train examples: the positives and
ExampleGen's sampled negatives (`ctr_negatives`).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import training


def fit_platt(scores: np.ndarray, labels: np.ndarray,
              iterations: int = 25) -> tuple[float, float]:
  """`(slope, intercept)` minimising the log loss of sigmoid(a s + b).

  Newton's method on the two-parameter logistic regression, with a small
  ridge so that separable scores stay finite.
  """
  inputs = np.stack([scores, np.ones_like(scores)], axis=1).astype(np.float64)
  labels = labels.astype(np.float64)
  weights = np.zeros(2)
  for _ in range(iterations):
    probability = 1.0 / (1.0 + np.exp(-inputs @ weights))
    gradient = inputs.T @ (probability - labels) + 1e-3 * weights
    hessian = (inputs.T @ (inputs * (probability * (1 - probability))[:, None])
               + 1e-3 * np.eye(2))
    weights -= np.linalg.solve(hessian, gradient)
  return float(weights[0]), float(weights[1])


def calibrate(score: Callable[[Mapping[str, tf.Tensor]], tf.Tensor],
              sample: Mapping[str, np.ndarray],
              batch_size: int = 512) -> tuple[float, float]:
  """Fits Platt scaling of `score` on labelled transformed examples.

  Args:
    score: transformed features -> `[batch]` uncalibrated scores.
    sample: transformed examples, `features.LABEL` included.
    batch_size: examples scored at once.

  Returns:
    `(slope, intercept)`.

  Raises:
    ValueError: if the sample has only one label (ExampleGen wrote no
      negatives).
  """
  labels = sample[features.LABEL]
  if labels.min(initial=1.0) > 0.5 or labels.max(initial=0.0) < 0.5:
    raise ValueError("the train split needs positives and ExampleGen's CTR "
                     "negatives (ctr_negatives > 0) to calibrate a ranker")
  return fit_platt(training.predict_in_batches(score, sample, batch_size),
                   labels)
