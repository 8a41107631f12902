"""Tests for EASE^R's sparse approximation's parts."""

import numpy as np
from scipy import sparse

from models.item_item import ease_approx
from models.item_item import gram
from models.item_item import neighbours as item_neighbours


def test_the_support_is_each_item_s_most_co_occurring_items_ragged():
  # Item 0 co-occurs with 1, 2 and 3, item 1 with 0, item 2 with 0 and 3,
  # item 3 with 0 and 2 (its diagonal aside), item 4 with nothing.
  gram_matrix = sparse.csr_matrix(np.array([[5, 1, 2, 2, 0],
                                            [1, 1, 0, 0, 0],
                                            [2, 0, 2, 1, 0],
                                            [2, 0, 1, 3, 0],
                                            [0, 0, 0, 0, 4]], np.float64))
  indptr, indices = ease_approx.top_co_occurring(gram_matrix, support=2)
  np.testing.assert_array_equal(indptr, [0, 2, 3, 5, 7, 7])
  # Largest first, ties by item.
  np.testing.assert_array_equal(indices, [2, 3, 0, 0, 3, 0, 2])
  indptr, indices = ease_approx.top_co_occurring(gram_matrix, support=8)
  np.testing.assert_array_equal(np.diff(indptr), [3, 1, 2, 2, 0])


def test_the_support_ranked_by_blocks_of_rows_is_the_support(monkeypatch):
  # 80 users, 30 items, each interaction with probability 0.05.
  x = sparse.csr_matrix(
      (np.random.default_rng(4).random((80, 30)) < 0.05).astype(np.float64))
  gram_matrix = gram.build(x)
  whole = ease_approx.top_co_occurring(gram_matrix, support=5)
  monkeypatch.setattr(item_neighbours, "RANKED_ENTRIES_PER_BLOCK", 11)
  blocked = ease_approx.top_co_occurring(gram_matrix, support=5)
  np.testing.assert_array_equal(blocked[0], whole[0])
  np.testing.assert_array_equal(blocked[1], whole[1])
  assert blocked[1].dtype == np.int32


def test_csr_lookup_reads_stored_entries_and_zero_elsewhere():
  matrix = sparse.random(300, 200, density=0.05, format="csr",
                         random_state=0, dtype=np.float32)
  matrix.sort_indices()
  rows, cols = np.meshgrid(np.arange(300), np.arange(200), indexing="ij")
  np.testing.assert_array_equal(
      ease_approx.csr_lookup(matrix, rows.ravel(), cols.ravel()),
      matrix.toarray().ravel())
  empty = sparse.csr_matrix((3, 3), dtype=np.float32)
  np.testing.assert_array_equal(
      ease_approx.csr_lookup(empty, np.array([0, 2]), np.array([1, 2])),
      [0, 0])


def test_gather_reads_sub_matrices_of_a_sparse_matrix():
  gram_matrix = sparse.csr_matrix(np.array([[5, 0, 2],
                                            [0, 7, 0],
                                            [2, 0, 3]], np.float64))
  blocks = ease_approx.gather_blocks(gram_matrix,
                                     np.array([[0, 2], [1, 2], [2, 0]]))
  np.testing.assert_array_equal(blocks, [[[5, 2], [2, 3]],
                                         [[7, 0], [0, 3]],
                                         [[3, 2], [2, 5]]])
