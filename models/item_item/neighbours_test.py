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
