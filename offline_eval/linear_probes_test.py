"""Tests for the light probes."""

import numpy as np
import pytest

from offline_eval import linear_probes


def test_splits_depend_on_the_seed_only():
  train, test = linear_probes.split(10, 0.3, seed=1)
  assert len(test) == 3 and len(np.intersect1d(train, test)) == 0
  np.testing.assert_array_equal(linear_probes.split(10, 0.3, seed=1)[1], test)
  assert not np.array_equal(linear_probes.split(10, 0.3, seed=2)[1], test)


def test_multilabel_f1_known_values():
  labels = np.array([[1, 0], [1, 1]], bool)
  predicted = np.array([[1, 1], [0, 1]], bool)
  # Label 0: 1 true positive, 1 miss; label 1: 1 true positive, 1 false
  # alarm. Micro: 2 * 2 / (2 * 2 + 2); macro: the mean of 2 * 1 / (2 + 1).
  assert linear_probes.multilabel_f1(labels, predicted, "micro") == (
      pytest.approx(2 / 3))
  assert linear_probes.multilabel_f1(labels[:, :1], predicted[:, :1],
                                     "macro") == pytest.approx(2 / 3)
  assert linear_probes.multilabel_f1(labels, labels, "macro") == 1.0
  with pytest.raises(ValueError, match="micro"):
    linear_probes.multilabel_f1(labels, predicted, "weighted")


def test_separable_labels_are_probed_perfectly():
  rng = np.random.default_rng(0)
  labels = rng.integers(2, size=200)
  features = np.stack([labels * 4.0 - 2.0, rng.normal(size=200)], axis=1)
  train, test = linear_probes.split(200, 0.3, seed=0)
  assert linear_probes.binary_auc(features, labels, train, test, 0) == 1.0
  assert linear_probes.class_f1(features, labels, 0, 0.3, "macro") == 1.0
  multilabel = np.stack([labels, 1 - labels], axis=1).astype(bool)
  assert linear_probes.multilabel_f1_probe(features, multilabel, train, test,
                                           0, "micro") == 1.0


@pytest.mark.parametrize("part", ["train", "test"])
def test_a_part_of_one_class_is_refused_naming_it(part):
  labels = np.array([0, 1, 0, 1, 0, 0])
  # Rows 4 and 5 are both 0: the part given them has one class.
  one_class, mixed = np.array([4, 5]), np.array([0, 1, 2, 3])
  train, test = (one_class, mixed) if part == "train" else (mixed, one_class)
  with pytest.raises(linear_probes.OneClassError,
                     match=f"{part} part has 2 rows of classes \\[0\\]"):
    linear_probes.binary_auc(np.ones((6, 2)), labels, train, test, 0)
