"""Tests for the closed-form families' benchmark."""

import numpy as np
import pytest

from benchmarks import classical
from models.item_item import item_knn

# Items 1..3, 0 is padding. Users who chose 1 then chose 2, and vice versa.
_SPLIT = classical.Split(
    histories=[np.array([1]), np.array([2]), np.array([1, 2]),
               np.array([3])],
    targets=np.array([2, 1, 3, 3]))


def test_interactions_are_the_histories():
  np.testing.assert_array_equal(_SPLIT.interactions(4).toarray(),
                                [[0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0],
                                 [0, 0, 0, 1]])


def test_most_popular_ranks_by_history_counts_without_known_items():
  metrics = classical.most_popular(_SPLIT, 4)
  # Counts: items 1 and 2 twice, item 3 once. Users 1-3 find their target
  # first among the items they do not know; user 4's target is in its
  # history, which never excludes a target, and comes third.
  assert metrics["recall@10"] == 1.0
  assert metrics["mrr"] == pytest.approx((3 + 1 / 3) / 4)


def test_item_knn_recommends_the_co_chosen_item_first():
  metrics = classical.evaluate_fit(
      item_knn.fit_item_knn, item_knn.ItemKnnConfig(neighbours=2,
                                                    shrinkage=0.0),
      _SPLIT, 4)
  # Users 1 and 2 get their co-chosen item first (cosine 1/2), user 3 the
  # only unknown item; user 4's item 3 has no neighbour and ties with the
  # other two at 0, ranked third (ties count against the target).
  assert metrics["hr@10"] == 1.0
  assert metrics["mrr"] == pytest.approx((3 + 1 / 3) / 4)
  assert metrics["fit_s"] >= 0 and metrics["fit_peak_mib"] >= 0
