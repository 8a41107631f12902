"""Sparse item-item weights shared by the `ease` and `item_knn` families.

Both families score a user by one item-item weight matrix B: the score of
item j is the sum over the user's history items i of B[i, j]. B is kept as
each item's top `k` outgoing weights (its row's `k` largest entries), so a
catalogue of n items costs n * k (index, weight) pairs however dense B is,
and the diagonal is zero: an item never recommends itself by construction
(EASE^R's constraint, kept for item-kNN too). Pure numpy/scipy; the serving
side is `models.layers.item_neighbour_scoring`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import numpy as np
from scipy import sparse

# Dense rows of an item-item matrix materialised at once while keeping each
# row's top k: this many float64 cells (128 MiB), whatever the catalogue.
_BLOCK_CELLS = 1 << 24
# Peak memory of sparsifying one block: the float64 rows, their negation,
# argpartition's int64 result and the rows' float32 source (`rows_of_b`).
BLOCK_PEAK_BYTES = _BLOCK_CELLS * (8 + 8 + 8 + 4)
# Stored entries of a sparse B ranked at once by `sparse_top_neighbours`:
# ranking the 498M entries of a 10M-event Gram matrix at once would hold
# about 18 GB of keys (`RANKING_BYTES_PER_ENTRY` each).
RANKED_ENTRIES_PER_BLOCK = 1 << 23
# Bytes per stored entry while a block is ranked (`ranked_entries`): the
# COO copy (int32 row and column, float32 weight), int64 row, column and
# order, float32 weight, int64 rank, and the sorted copies.
RANKING_BYTES_PER_ENTRY = 12 + 8 * 3 + 4 + 8 + 28


@dataclasses.dataclass(frozen=True)
class ItemNeighbours:
  """Each item's top `k` entries of an item-item weight matrix B.

  Attributes:
    indices: `[num_items, k]` int64 column j of each kept B[i, j].
    weights: `[num_items, k]` float32 B[i, j], largest first; a kept
      entry may be 0 (a row with fewer than `k` non-zero entries).
  """
  indices: np.ndarray
  weights: np.ndarray

  @property
  def num_items(self) -> int:
    return self.indices.shape[0]

  def matrix(self) -> sparse.csr_matrix:
    """B as a `[num_items, num_items]` sparse matrix."""
    rows = np.repeat(np.arange(self.num_items), self.indices.shape[1])
    return sparse.csr_matrix(
        (self.weights.ravel(), (rows, self.indices.ravel())),
        shape=(self.num_items, self.num_items))

  def score(self, histories: sparse.spmatrix) -> np.ndarray:
    """`[users, num_items]` scores of users given as `[users, num_items]`
    history counts: `histories @ B`."""
    return np.asarray((sparse.csr_matrix(histories) @ self.matrix()).todense())


def interaction_matrix(user_indices: np.ndarray, item_indices: np.ndarray,
                       num_items: int) -> sparse.csr_matrix:
  """Binary `[users, num_items]` matrix X of who interacted with what.

  Args:
    user_indices: one user index per interaction.
    item_indices: the interaction's item index, below `num_items`.
    num_items: columns of X (every item index, padding included).

  Returns:
    X, with 1 wherever a user interacted with an item (repeats count once).
  """
  user_indices = np.asarray(user_indices, np.int64)
  num_users = int(user_indices.max()) + 1 if user_indices.size else 0
  counts = sparse.csr_matrix(
      (np.ones(len(user_indices), np.float32),
       (user_indices, np.asarray(item_indices, np.int64))),
      shape=(num_users, num_items))
  counts.data[:] = 1.0
  return counts


def top_neighbours(rows_of_b: Callable[[slice], np.ndarray], num_items: int,
                   k: int) -> ItemNeighbours:
  """Keeps each row's `k` largest entries of a B built block by block.

  Args:
    rows_of_b: a slice of rows -> those rows of B, dense `[rows, num_items]`
      (may be overwritten); called on blocks of at most `_BLOCK_CELLS` cells,
      so that a dense B never needs to exist whole.
    num_items: B's size.
    k: entries kept per row; at most `num_items`.

  Returns:
    The kept entries, the diagonal left out.
  """
  k = min(k, num_items)
  rows_per_block = max(1, _BLOCK_CELLS // max(num_items, 1))
  blocks = [_keep_top_entries(rows_of_b(slice(start, start + rows_per_block)),
                              start, k)
            for start in range(0, num_items, rows_per_block)]
  return ItemNeighbours(np.concatenate([indices for indices, _ in blocks]),
                        np.concatenate([weights for _, weights in blocks]))


def _keep_top_entries(block: np.ndarray, first_row: int,
                      k: int) -> tuple[np.ndarray, np.ndarray]:
  """Each row's `k` largest entries, the diagonal left out.

  Args:
    block: `[rows, num_items]` dense rows `first_row...` of B; overwritten.
    first_row: B's row index of `block[0]`, to find the diagonal.
    k: entries to keep per row, at most `num_items`.

  Returns:
    `[rows, k]` column indices and float32 weights, largest first.
  """
  rows = np.arange(block.shape[0])
  block[rows, first_row + rows] = -np.inf
  top = np.argpartition(-block, k - 1, axis=1)[:, :k]
  weights = np.take_along_axis(block, top, axis=1)
  order = np.argsort(-weights, axis=1, kind="stable")
  top = np.take_along_axis(top, order, axis=1)
  weights = np.take_along_axis(weights, order, axis=1)
  # Only the diagonal is -inf; it is kept only when a row has nothing else.
  weights[~np.isfinite(weights)] = 0.0
  return top.astype(np.int64), weights.astype(np.float32)


def row_blocks(indptr: np.ndarray, entries_per_block: int
               ) -> Iterator[tuple[int, int]]:
  """Consecutive row ranges `[start, end)` of a CSR matrix holding at most
  `entries_per_block` stored entries each, or one row where a single row
  holds more.

  Args:
    indptr: the matrix's `indptr` (or any non-decreasing cumulative count
      of entries per row, starting with 0).
    entries_per_block: the entries a block should not pass.

  Yields:
    `(start, end)` of each block, covering every row in order.
  """
  num_rows = len(indptr) - 1
  start = 0
  while start < num_rows:
    end = int(np.searchsorted(indptr, indptr[start] + entries_per_block,
                              side="right")) - 1
    end = min(max(end, start + 1), num_rows)
    yield start, end
    start = end


def ranking_peak_bytes(stored_entries: int, num_items: int) -> int:
  """Peak memory of ranking a B of `stored_entries` over `num_items` items
  a block of rows at a time (`sparse_top_neighbours`): one block, at most
  `RANKED_ENTRIES_PER_BLOCK` entries or one row."""
  return RANKING_BYTES_PER_ENTRY * min(
      max(RANKED_ENTRIES_PER_BLOCK, num_items), stored_entries)


def ranked_entries(b: sparse.spmatrix, first_row: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """B's stored off-diagonal entries, each row's largest first.

  Args:
    b: `[rows, num_items]` sparse rows `first_row...` of B.
    first_row: B's row index of `b`'s first row, to find the diagonal.

  Returns:
    int64 rows (of `b`), int64 columns, float32 weights and each entry's
    int64 rank within its row (0 for the largest), sorted by row, then
    weight (descending), then column.
  """
  b = sparse.coo_matrix(b)
  off_diagonal = b.row.astype(np.int64) + first_row != b.col
  rows = b.row[off_diagonal].astype(np.int64)
  cols = b.col[off_diagonal].astype(np.int64)
  weights = b.data[off_diagonal].astype(np.float32)
  order = np.lexsort((cols, -weights, rows))
  rows, cols, weights = rows[order], cols[order], weights[order]
  del order
  rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(b.shape[0]))[rows]
  return rows, cols, weights, rank


def sparse_top_neighbours(b: sparse.spmatrix, k: int, first_row: int = 0
                          ) -> ItemNeighbours:
  """Keeps each row's `k` largest entries of a sparse B, its implicit zeros
  included.

  Memory and time grow with B's stored entries and `num_items * k`, never
  with `num_items²`: no dense row and no `[num_items, 2k]` candidate block
  is built, and the stored entries are ranked a block of rows at a time
  (`RANKED_ENTRIES_PER_BLOCK`), so a million items with k = 256 cost the
  `[num_items, k]` result, B, and one block's sort. A row's implicit zeros
  are kept as weight 0 at the row's own index (the diagonal, whose weight is
  0 by construction), ranked among its stored entries; ties keep stored
  entries first, then by column.

  Args:
    b: `[rows, num_items]` sparse rows `first_row...` of B (B whole by
      default); their diagonal entries, if stored, are dropped.
    k: entries kept per row; at most `num_items`.
    first_row: B's row index of `b`'s first row.

  Returns:
    The kept entries of `b`'s rows, largest first.
  """
  b = sparse.csr_matrix(b)
  blocks = [_sparse_top_of_rows(b[start:end], k, first_row + start)
            for start, end in row_blocks(b.indptr, RANKED_ENTRIES_PER_BLOCK)]
  if not blocks:
    return ItemNeighbours(np.zeros((0, min(k, b.shape[1])), np.int64),
                          np.zeros((0, min(k, b.shape[1])), np.float32))
  return ItemNeighbours(np.concatenate([top.indices for top in blocks]),
                        np.concatenate([top.weights for top in blocks]))


def _sparse_top_of_rows(b: sparse.csr_matrix, k: int,
                        first_row: int) -> ItemNeighbours:
  """`sparse_top_neighbours` of one block of rows, ranked at once."""
  num_rows, num_items = b.shape
  k = min(k, num_items)
  rows, cols, weights, rank = ranked_entries(b, first_row)
  # A row's implicit zeros (at most k of them matter) rank after its stored
  # entries >= 0 and before its negative ones, which move back by that many.
  implicit_zeros = num_items - 1 - np.bincount(rows, minlength=num_rows)
  position = rank + np.where(weights < 0,
                             np.minimum(implicit_zeros, k)[rows], 0)
  kept = position < k
  # Every slot no stored entry takes is a zero at the row's own index: an
  # implicit zero, or padding of a row with fewer than k entries.
  indices = np.repeat(
      np.arange(first_row, first_row + num_rows, dtype=np.int64)[:, np.newaxis],
      k, axis=1)
  top = np.zeros((num_rows, k), np.float32)
  indices[rows[kept], position[kept]] = cols[kept]
  top[rows[kept], position[kept]] = weights[kept]
  return ItemNeighbours(indices, top)
