"""Tests for the benchmarks' EASE^R / item-kNN glue."""

import numpy as np
import pytest

from models.item_item import ease
from models.item_item import item_knn
from models.item_item import neighbours as item_neighbours
from offline_eval import item_item


def test_history_matrix_is_binary_without_padding_and_keeps_empty_users():
  matrix = item_item.history_matrix(
      [np.array([1, 2, 2]), np.array([], np.int64), np.array([0, 3]),
       np.array([0])], 5)
  np.testing.assert_array_equal(matrix.toarray(), [[0, 1, 1, 0, 0],
                                                   [0, 0, 0, 0, 0],
                                                   [0, 0, 0, 1, 0],
                                                   [0, 0, 0, 0, 0]])


def test_search_settings_are_the_product_grids():
  assert [config.l2 for config in item_item.search_settings("ease")] == list(
      ease.EaseConfig().l2_grid)
  knn = item_item.search_settings(
      "item_knn", item_knn.ItemKnnConfig(neighbours_grid=(5, 10),
                                         shrinkage_grid=(0.0, 1.0, 2.0)))
  # Shrinkage first: its settings share one pass (`fit_item_knn_each`).
  assert [(c.neighbours, c.shrinkage) for c in knn] == [
      (5, 0.0), (10, 0.0), (5, 1.0), (10, 1.0), (5, 2.0), (10, 2.0)]


def _neighbours():
  # B over items 0..3: B[1, 2] = 0.5, B[1, 3] = 0.1, B[2, 1] = 0.4,
  # B[2, 3] = 0.2, B[3, 1] = 0.3; row 0 (padding) and the rest are 0.
  return item_neighbours.ItemNeighbours(
      indices=np.array([[1, 2], [2, 3], [1, 3], [1, 2]]),
      weights=np.array([[0.0, 0.0], [0.5, 0.1], [0.4, 0.2], [0.3, 0.0]],
                       np.float32))


def test_scorer_sums_the_history_rows_of_b():
  histories = item_item.history_matrix(
      [np.array([1]), np.array([1, 2]), np.array([3])], 4)
  scorer = item_item.ItemItemScorer(_neighbours(), histories)
  np.testing.assert_allclose(scorer.score_all(np.array([1, 0])),
                             [[0, 0.4, 0.5, 0.3], [0, 0, 0.5, 0.1]],
                             rtol=1e-6)
  np.testing.assert_allclose(
      scorer.score_items(np.array([[3, 2], [3, 1], [2, 1]])),
      [[0.1, 0.5], [0.3, 0.4], [0.0, 0.3]], rtol=1e-6)


def test_tune_keeps_the_first_best_setting_and_its_fit():
  train = item_item.history_matrix(
      [np.array([1, 2]), np.array([1, 2, 3]), np.array([2, 3]),
       np.array([1, 3])], 4)
  settings = [ease.EaseConfig(l2=l2) for l2 in (1.0, 10.0, 100.0)]
  metrics = iter([0.1, 0.3, 0.3])
  fitted = []

  def validate(neighbours):
    fitted.append(neighbours)
    return next(metrics)

  tuned = item_item.tune("ease", train, validate, settings)
  assert tuned.config.l2 == 10.0
  assert tuned.neighbours is fitted[1]
  np.testing.assert_allclose(
      tuned.neighbours.weights,
      ease.fit_ease(train, settings[1]).weights)
  assert [row["hparams"] for row in tuned.validation] == [
      {"l2": 1.0}, {"l2": 10.0}, {"l2": 100.0}]
  assert [row["validation"] for row in tuned.validation] == [0.1, 0.3, 0.3]
  with pytest.raises(ValueError, match="no ease settings"):
    item_item.tune("ease", train, validate, [])
