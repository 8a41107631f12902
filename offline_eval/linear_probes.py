"""Light probes fit on frozen features: seeded splits, logistic regression.

A probe measures how much of a label a frozen embedding holds: a
standardised logistic regression is fit on a seeded train part of the rows
and scored on the rest. `offline_eval.probes` builds its tasks on these.
"""

from __future__ import annotations

import numpy as np
from sklearn import linear_model
from sklearn import metrics as sk_metrics
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_preprocessing

from offline_eval import protocols

_MAX_ITERATIONS = 1000


def split(num_rows: int, test_fraction: float, seed: int
          ) -> tuple[np.ndarray, np.ndarray]:
  """Seeded random (train, test) row indices, each sorted."""
  order = np.random.default_rng(seed).permutation(num_rows)
  num_test = int(round(num_rows * test_fraction))
  return np.sort(order[num_test:]), np.sort(order[:num_test])


def _logistic(seed: int) -> sk_pipeline.Pipeline:
  return sk_pipeline.make_pipeline(
      sk_preprocessing.StandardScaler(),
      linear_model.LogisticRegression(max_iter=_MAX_ITERATIONS,
                                      random_state=seed))


class OneClassError(ValueError):
  """A binary probe's train or test part holds fewer than two classes: no
  probe can be fit, or no AUC measured, whatever the embedding."""


def binary_auc(features: np.ndarray, labels: np.ndarray, train: np.ndarray,
               test: np.ndarray, seed: int) -> float:
  """AUC on the `test` rows of a probe fit on the `train` rows.

  Raises:
    OneClassError: when the train or the test rows hold one class (or none).
  """
  for part, rows in (("train", train), ("test", test)):
    classes = np.unique(labels[rows])
    if len(classes) < 2:
      raise OneClassError(
          f"the probe's {part} part has {len(rows)} rows of classes "
          f"{classes.tolist()}: it needs both labels")
  probe = _logistic(seed).fit(features[train], labels[train])
  return protocols.auc(labels[test], probe.predict_proba(features[test])[:, 1])


def class_f1(features: np.ndarray, labels: np.ndarray, seed: int,
             test_fraction: float, average: str) -> float:
  """F1 (`average`: "macro", "micro", ...) of a multinomial probe."""
  train, test = split(len(labels), test_fraction, seed)
  probe = _logistic(seed).fit(features[train], labels[train])
  return float(sk_metrics.f1_score(labels[test], probe.predict(features[test]),
                                   average=average))


def multilabel_f1(labels: np.ndarray, predicted: np.ndarray,
                  average: str) -> float:
  """Micro or macro F1 of 0/1 matrices `[n, num_labels]`."""
  true_positives = (labels & predicted).sum(axis=0)
  errors = (labels ^ predicted).sum(axis=0)
  if average == "micro":
    return float(2 * true_positives.sum() /
                 max(2 * true_positives.sum() + errors.sum(), 1))
  if average == "macro":
    return float(np.mean(2 * true_positives /
                         np.maximum(2 * true_positives + errors, 1)))
  raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")


def multilabel_f1_probe(features: np.ndarray, labels: np.ndarray,
                        train: np.ndarray, test: np.ndarray, seed: int,
                        average: str) -> float:
  """One binary probe per label; F1 of the predicted label sets on `test`.

  Args:
    features: `[n, D]` row features.
    labels: `[n, num_labels]` booleans.
    train: rows the probes are fit on.
    test: rows they are scored on.
    seed: the probes' random state.
    average: "micro" or "macro".

  Returns:
    The F1 over the labels that have a positive and a negative in `train`
    (any other label cannot be probed).
  """
  train_positives = labels[train].sum(axis=0)
  labels = labels[:, (train_positives > 0) & (train_positives < len(train))]
  predicted = np.stack([
      _logistic(seed).fit(features[train], column[train])
      .predict(features[test]).astype(bool)
      for column in labels.T], axis=1)
  return multilabel_f1(labels[test], predicted, average)
