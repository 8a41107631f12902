"""Tests for sizing the co-occurrence matrix before it is built."""

import numpy as np
import pytest
from scipy import sparse

from models.item_item import gram


def _random_log(users=40, items=30, density=0.2, seed=0):
  rng = np.random.default_rng(seed)
  return sparse.csr_matrix((rng.random((users, items)) < density)
                           .astype(np.float32))


def test_count_nonzeros_matches_the_built_matrix_block_by_block():
  interactions = _random_log()
  built = (interactions.T @ interactions).nnz
  assert gram.count_nonzeros(interactions, columns_per_block=7) == built
  assert gram.count_nonzeros(interactions) == built


def test_each_item_s_nonzeros_are_its_row_of_the_built_matrix():
  interactions = _random_log(seed=1)
  built = (interactions.T @ interactions).tocsr()
  np.testing.assert_array_equal(
      gram.nonzeros_per_item(interactions, columns_per_block=4),
      np.diff(built.indptr))


def test_the_bound_is_the_sum_of_squared_user_counts_capped_at_items_squared():
  # Two users of 3 items each, one of 1: 9 + 9 + 1.
  interactions = sparse.csr_matrix(np.array(
      [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]], np.float32))
  assert gram.nonzeros_bound(interactions) == 19
  assert gram.nonzeros_bound(interactions) >= gram.count_nonzeros(interactions)
  everyone_has_everything = sparse.csr_matrix(np.ones((10, 4), np.float32))
  assert gram.nonzeros_bound(everyone_has_everything) == 16


def test_a_gram_within_the_budget_is_built():
  interactions = _random_log()
  expected = (interactions.T @ interactions).toarray()
  np.testing.assert_array_equal(
      gram.checked_gram(interactions, 10**9, 16, "EASE^R").toarray(), expected)


def test_a_gram_over_the_bound_but_within_the_budget_when_counted_is_built():
  # Ten users with the same 4 items: the bound counts 160 pairs, G has 16.
  interactions = sparse.csr_matrix(np.ones((10, 4), np.float32))
  interactions = sparse.hstack([interactions, sparse.csr_matrix((10, 96))],
                               format="csr")
  assert gram.nonzeros_bound(interactions) == 160
  built = gram.checked_gram(interactions, budget_bytes=16 * 20,
                            bytes_per_nonzero=16, family="EASE^R")
  assert built.nnz == 16


def test_a_gram_over_the_budget_is_refused_naming_the_setting():
  interactions = _random_log()
  nonzeros = (interactions.T @ interactions).nnz
  with pytest.raises(ValueError, match=(
      f"item-kNN's co-occurrence matrix .* has {nonzeros:,} non-zeros.*"
      "memory_budget_gb=0.0")):
    gram.checked_gram(interactions, budget_bytes=16 * nonzeros - 1,
                      bytes_per_nonzero=16, family="item-kNN")


def test_the_default_budget_is_half_the_memory_available(monkeypatch):
  assert gram.available_memory_bytes() > 0
  monkeypatch.setattr(gram, "available_memory_bytes", lambda: 10_000)
  assert gram.memory_budget_bytes(None) == 5_000
  assert gram.memory_budget_bytes(2.5) == 2_500_000_000
