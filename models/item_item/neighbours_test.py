"""Tests for the sparse item-item weights."""

import numpy as np
import pytest
from scipy import sparse

from models.item_item import neighbours as item_neighbours


def test_interaction_matrix_is_binary_users_by_items():
  matrix = item_neighbours.interaction_matrix(
      np.array([0, 0, 0, 2]), np.array([1, 1, 3, 2]), num_items=4)
  np.testing.assert_array_equal(matrix.toarray(), [[0, 1, 0, 1],
                                                   [0, 0, 0, 0],
                                                   [0, 0, 1, 0]])


def test_top_neighbours_keeps_the_largest_off_diagonal_entries():
  dense = np.array([[9, 1, 3, 2],
                    [4, 9, -1, 5],
                    [0, 0, 9, 0],
                    [-2, -3, -1, 9]], np.float64)
  neighbours = item_neighbours.top_neighbours(
      lambda rows: dense[rows].copy(), num_items=4, k=2)
  np.testing.assert_array_equal(neighbours.indices[[0, 1, 3]],
                                [[2, 3], [3, 0], [2, 0]])
  np.testing.assert_allclose(neighbours.weights,
                             [[3, 2], [5, 4], [0, 0], [-1, -2]])
  # A row of zeros keeps zeros, never its own diagonal entry.
  assert 2 not in neighbours.indices[2]


def test_top_neighbours_is_the_same_in_blocks_of_one_row(monkeypatch):
  dense = np.random.default_rng(0).normal(size=(7, 7))
  whole = item_neighbours.top_neighbours(lambda rows: dense[rows].copy(), 7, 3)
  monkeypatch.setattr(item_neighbours, "_BLOCK_CELLS", 1)
  blocked = item_neighbours.top_neighbours(lambda rows: dense[rows].copy(), 7, 3)
  np.testing.assert_array_equal(whole.indices, blocked.indices)
  np.testing.assert_array_equal(whole.weights, blocked.weights)


def test_score_is_history_counts_times_b():
  neighbours = item_neighbours.ItemNeighbours(
      indices=np.array([[1], [2], [0]]),
      weights=np.array([[0.5], [2.0], [1.0]], np.float32))
  histories = sparse.csr_matrix(np.array([[1, 1, 0], [0, 0, 2]]))
  np.testing.assert_allclose(neighbours.score(histories),
                             [[0, 0.5, 2], [2, 0, 0]])


def test_sparse_top_neighbours_pads_with_zero_at_the_row_itself():
  b = sparse.csr_matrix(np.array([[7, 1, 3, 2],
                                  [4, 0, -1, 0],
                                  [0, 0, 0, 0],
                                  [-2, -3, -1, 0]], np.float64))
  neighbours = item_neighbours.sparse_top_neighbours(b, k=2)
  # The stored diagonal 7 is dropped; an implicit zero outranks a negative
  # (row 1), a row without implicit zeros keeps its negatives (row 3).
  np.testing.assert_array_equal(neighbours.indices,
                                [[2, 3], [0, 1], [2, 2], [2, 0]])
  np.testing.assert_allclose(neighbours.weights,
                             [[3, 2], [4, 0], [0, 0], [-1, -2]])


@pytest.mark.parametrize("seed, k, zero_below", [
    (0, 3, 0.3), (1, 1, 0.0), (2, 5, -0.5), (3, 29, 0.0), (4, 30, -3.0)])
def test_sparse_top_neighbours_ranks_like_the_dense_top_neighbours(
    seed, k, zero_below):
  # Negative entries, rows without implicit zeros (zero_below=-3) and k up to
  # the whole catalogue: the sparse path ranks as the dense one does.
  size = 30 if k > 3 else 9
  dense = np.random.default_rng(seed).normal(size=(size, size))
  dense[np.abs(dense) < abs(zero_below) if zero_below < 0
        else dense < zero_below] = 0.0
  dense[seed] = 0.0
  from_dense = item_neighbours.top_neighbours(lambda rows: dense[rows].copy(),
                                              size, k)
  from_sparse = item_neighbours.sparse_top_neighbours(
      sparse.csr_matrix(dense), k)
  np.testing.assert_allclose(from_sparse.weights, from_dense.weights)
  np.testing.assert_allclose(from_sparse.matrix().toarray(),
                             from_dense.matrix().toarray())


def test_a_stored_zero_ranks_before_the_implicit_zeros():
  # Row 0 stores 0 at column 2 and -1 at column 1; its one implicit zero
  # (column 3) is kept at the row's own index, after the stored zero.
  b = sparse.csr_matrix((np.array([0.0, -1.0]), (np.array([0, 0]),
                                                 np.array([2, 1]))),
                        shape=(4, 4))
  neighbours = item_neighbours.sparse_top_neighbours(b, k=3)
  np.testing.assert_array_equal(neighbours.indices[0], [2, 0, 1])
  np.testing.assert_array_equal(neighbours.weights[0], [0, 0, -1])


@pytest.mark.parametrize("entries_per_block, expected", [
    (3, [(0, 1), (1, 3), (3, 5)]),
    (5, [(0, 2), (2, 5)]),
    (100, [(0, 5)])])
def test_row_blocks_hold_at_most_their_entries_or_one_row(entries_per_block,
                                                         expected):
  # Rows of 4, 1, 2, 3 and 0 entries: a row of 4 passes a bound of 3 alone,
  # and an empty row joins the block before it.
  indptr = np.array([0, 4, 5, 7, 10, 10])
  assert list(item_neighbours.row_blocks(indptr, entries_per_block)) == expected


def test_sparse_top_neighbours_ranks_a_block_of_rows_at_a_time(monkeypatch):
  dense = np.random.default_rng(5).normal(size=(20, 20))
  dense[np.abs(dense) < 0.8] = 0.0
  whole = item_neighbours.sparse_top_neighbours(sparse.csr_matrix(dense), 4)
  monkeypatch.setattr(item_neighbours, "RANKED_ENTRIES_PER_BLOCK", 7)
  blocked = item_neighbours.sparse_top_neighbours(sparse.csr_matrix(dense), 4)
  np.testing.assert_array_equal(blocked.indices, whole.indices)
  np.testing.assert_array_equal(blocked.weights, whole.weights)
  # Rows 10... of B alone, told their first row, keep what B whole keeps.
  rows = item_neighbours.sparse_top_neighbours(
      sparse.csr_matrix(dense[10:]), 4, first_row=10)
  np.testing.assert_array_equal(rows.indices, whole.indices[10:])
  np.testing.assert_array_equal(rows.weights, whole.weights[10:])


def test_the_ranking_peak_is_one_block_or_one_row_or_everything():
  per_entry = item_neighbours.RANKING_BYTES_PER_ENTRY
  block = item_neighbours.RANKED_ENTRIES_PER_BLOCK
  assert item_neighbours.ranking_peak_bytes(1000, 50) == 1000 * per_entry
  assert item_neighbours.ranking_peak_bytes(10 * block, 50) == block * per_entry
  assert item_neighbours.ranking_peak_bytes(10 * block, 2 * block) == (
      2 * block * per_entry)
