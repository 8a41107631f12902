"""Tests for item-kNN's shrunk cosine neighbours."""

import numpy as np
import pytest
from scipy import sparse

from models.item_item import gram
from models.item_item import item_knn
from models.item_item import neighbours as item_neighbours

# Items 1..3 (0 is padding, never chosen). Users: {1, 2}, {1, 2}, {1, 3}.
_X = sparse.csr_matrix(np.array([[0, 1, 1, 0],
                                 [0, 1, 1, 0],
                                 [0, 1, 0, 1]]))


def test_shrunk_cosine_by_hand():
  neighbours = item_knn.fit_item_knn(
      _X, item_knn.ItemKnnConfig(neighbours=3, shrinkage=1.0))
  b = neighbours.matrix().toarray()
  # C11 = 3, C22 = 2, C33 = 1, C12 = 2, C13 = 1, C23 = 0.
  expected = np.zeros((4, 4))
  expected[1, 2] = expected[2, 1] = 2 / (np.sqrt(3) * np.sqrt(2) + 1)
  expected[1, 3] = expected[3, 1] = 1 / (np.sqrt(3) * 1 + 1)
  np.testing.assert_allclose(b, expected, rtol=1e-6)


def test_keeps_the_most_similar_neighbours_and_never_the_item_itself():
  neighbours = item_knn.fit_item_knn(
      _X, item_knn.ItemKnnConfig(neighbours=1, shrinkage=0.0))
  # Item 1: cosine 2/sqrt(6) with item 2 beats 1/sqrt(3) with item 3.
  assert neighbours.indices[1, 0] == 2
  np.testing.assert_allclose(neighbours.weights[1:, 0],
                             [2 / np.sqrt(6), 2 / np.sqrt(6), 1 / np.sqrt(3)],
                             rtol=1e-6)
  # Padding, chosen by nobody, has no similarity (no NaN from 0 / 0).
  assert neighbours.weights[0, 0] == 0
  # An item with neighbours never has itself among them; padding, without
  # any, keeps a 0 at its own index.
  assert all(neighbours.indices[i, 0] != i for i in range(1, 4))


def test_equals_the_dense_shrunk_cosine_top_k():
  x = (np.random.default_rng(0).random((40, 12)) < 0.2).astype(np.float64)
  b = item_knn.fit_item_knn(sparse.csr_matrix(x), item_knn.ItemKnnConfig(
      neighbours=12, shrinkage=3.0)).matrix().toarray()
  counts = x.T @ x
  norms = np.sqrt(np.diag(counts))
  expected = counts / (norms[:, np.newaxis] * norms + 3.0)
  np.fill_diagonal(expected, 0.0)
  np.testing.assert_allclose(b, expected, rtol=1e-6)


def test_a_fit_over_the_budget_is_refused_naming_the_setting():
  with pytest.raises(ValueError, match="item-kNN on 4 items with "
                     "neighbours=2 needs about .* above memory_budget_gb"):
    item_knn.fit_item_knn(_X, item_knn.ItemKnnConfig(
        neighbours=2, shrinkage=1.0, memory_budget_gb=1e-12))


def test_blocks_of_rows_give_the_fit_of_one_block(monkeypatch):
  x = sparse.csr_matrix(
      (np.random.default_rng(1).random((60, 25)) < 0.25).astype(np.float32))
  config = item_knn.ItemKnnConfig(neighbours=6, shrinkage=2.0)
  whole = item_knn.fit_item_knn(x, config)
  monkeypatch.setattr(gram, "ENTRIES_PER_BLOCK", 8)
  monkeypatch.setattr(item_neighbours, "RANKED_ENTRIES_PER_BLOCK", 5)
  blocked = item_knn.fit_item_knn(x, config)
  np.testing.assert_array_equal(blocked.indices, whole.indices)
  np.testing.assert_array_equal(blocked.weights, whole.weights)


def test_fit_each_shares_a_pass_per_shrinkage_and_equals_each_fit(
    monkeypatch):
  x = sparse.csr_matrix(
      (np.random.default_rng(2).random((50, 20)) < 0.3).astype(np.float32))
  configs = [item_knn.ItemKnnConfig(neighbours=k, shrinkage=s)
             for s in (1.0, 50.0) for k in (2, 5, 30)]
  passes = []
  top_similar = item_knn._top_similar
  monkeypatch.setattr(item_knn, "_top_similar",
                      lambda *args: passes.append(args[2:])
                      or top_similar(*args))
  each = list(item_knn.fit_item_knn_each(x, configs))
  # One pass per shrinkage, at its largest neighbours.
  assert passes == [(1.0, 30), (50.0, 30)]
  for config, fitted in zip(configs, each):
    alone = item_knn.fit_item_knn(x, config)
    np.testing.assert_array_equal(fitted.indices, alone.indices)
    np.testing.assert_array_equal(fitted.weights, alone.weights)
