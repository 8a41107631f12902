"""Tests for the co-occurrence matrix computed a block of rows at a time."""

import numpy as np
import pytest
from scipy import sparse

from models.item_item import gram


def _random_log(users=40, items=30, density=0.2, seed=0):
  rng = np.random.default_rng(seed)
  return sparse.csr_matrix((rng.random((users, items)) < density)
                           .astype(np.float32))


def test_the_bound_per_item_sums_its_users_item_counts_capped_at_items():
  # Users of 3, 3 and 1 items: item 0 has the first and last, item 2 the
  # first two; item 0's bound 3 + 1, item 2's 3 + 3 capped at 5 items.
  interactions = sparse.csr_matrix(np.array(
      [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]], np.float32))
  np.testing.assert_array_equal(gram.nonzeros_bound_per_item(interactions),
                                [4, 3, 5, 3, 3])
  built = (interactions.T @ interactions).tocsr()
  assert np.all(gram.nonzeros_bound_per_item(interactions)
                >= np.diff(built.indptr))


@pytest.mark.parametrize("entries_per_block", [1, 7, 60, None])
def test_row_blocks_are_g_s_rows_in_order_within_their_bound(
    entries_per_block):
  interactions = _random_log()
  built = (interactions.T @ interactions).tocsr()
  bounds = gram.nonzeros_bound_per_item(interactions)
  expected_start = 0
  blocks = 0
  for start, block in gram.row_blocks(interactions, entries_per_block):
    assert start == expected_start
    end = start + block.shape[0]
    np.testing.assert_array_equal(block.toarray(), built[start:end].toarray())
    assert block.has_sorted_indices
    if entries_per_block is not None and block.shape[0] > 1:
      assert bounds[start:end].sum() <= entries_per_block
    expected_start = end
    blocks += 1
  assert expected_start == interactions.shape[1]
  if entries_per_block == 1:
    # Every row's bound passes 1: one row per block.
    assert blocks == interactions.shape[1]


def test_each_item_s_nonzeros_are_its_row_of_the_built_matrix():
  interactions = _random_log(seed=1)
  built = (interactions.T @ interactions).tocsr()
  np.testing.assert_array_equal(
      gram.nonzeros_per_item(interactions, entries_per_block=20),
      np.diff(built.indptr))
  assert gram.nonzeros_per_item(interactions).sum() == built.nnz


@pytest.mark.parametrize("entries_per_block", [3, 50, None])
def test_build_assembles_the_product_from_blocks(entries_per_block):
  interactions = _random_log(seed=2)
  built = gram.build(interactions, entries_per_block=entries_per_block)
  expected = (interactions.T @ interactions).tocsr()
  assert built.dtype == np.float32
  assert built.indices.dtype == np.int32
  assert built.has_sorted_indices
  np.testing.assert_array_equal(built.toarray(), expected.toarray())
  np.testing.assert_array_equal(built.indptr, expected.indptr)


def test_block_entries_is_the_block_bound_or_a_larger_row_or_all_of_g():
  interactions = _random_log(seed=3)
  bounds = gram.nonzeros_bound_per_item(interactions)
  assert gram.block_entries(interactions, 10**9) == bounds.sum()
  assert gram.block_entries(interactions, 1) == bounds.max()
  assert gram.block_entries(interactions, 100) == 100


def test_index_bytes_follow_scipy_s_int32_limit():
  assert gram.index_bytes(2**31 - 1) == 4
  assert gram.index_bytes(2**31) == 8


def test_the_default_budget_is_half_the_memory_available(monkeypatch):
  assert gram.available_memory_bytes() > 0
  monkeypatch.setattr(gram, "available_memory_bytes", lambda: 10_000)
  assert gram.memory_budget_bytes(None) == 5_000
  assert gram.memory_budget_bytes(2.5) == 2_500_000_000
