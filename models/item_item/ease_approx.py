"""EASE^R's sparse approximation: each column regressed on its support.

`models.item_item.ease`'s "sparse_approx" solver: EASE^R's closed form
restricted, per column j, to the `support` items co-occurring most with j
(`top_co_occurring`): b_j solves (G_NN + λI) b_j = G_Nj with N the support,
j excluded (so diag(B) = 0 holds by construction), every other weight of
column j 0. The support is fsSLIM's feature selection (Ning & Karypis,
"SLIM: Sparse Linear Methods for Top-N Recommender Systems", ICDM 2011), the
regression EASE^R's. G stays sparse; columns are solved in batches of
`[batch, s, s]` blocks (read from G by a binary search per entry, upper
triangle only), the batches shared by a thread per CPU, so memory grows with
the co-occurrences and `items * support²`, never with `items²`. An item
co-occurring with fewer than `support` items gets them all; when every pair
of items co-occurs and `support >= items - 1` the result is exact EASE^R.
"""

from __future__ import annotations

from concurrent import futures
from typing import Sequence

import numpy as np
from scipy import sparse
import threadpoolctl

from models.item_item import neighbours as item_neighbours

# Cells of the `[batch, s, s]` blocks solved at once: their float64 values,
# their indices and the solver's copy stay a few hundred MiB.
SOLVE_BLOCK_CELLS = 1 << 22


def top_co_occurring(gram: sparse.csr_matrix, support: int
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Each item's `support` most co-occurring items (fsSLIM's support).

  Ragged, as CSR: most items of a sparse log co-occur with far fewer than
  `support` others, so memory grows with what is kept, not `items *
  support`. G's entries are ranked a block of rows at a time
  (`item_neighbours.RANKED_ENTRIES_PER_BLOCK`).

  Args:
    gram: G, CSR; its diagonal is left out.
    support: the most items kept per item.

  Returns:
    int64 `indptr` (`[items + 1]`) and int32 `indices`: item i's support is
    `indices[indptr[i]:indptr[i + 1]]`, most co-occurring first (ties by
    item).
  """
  counts, kept_items = [], []
  for start, end in item_neighbours.row_blocks(
      gram.indptr, item_neighbours.RANKED_ENTRIES_PER_BLOCK):
    rows, cols, _, rank = item_neighbours.ranked_entries(gram[start:end],
                                                         first_row=start)
    kept = rank < support
    counts.append(np.bincount(rows[kept], minlength=end - start))
    kept_items.append(cols[kept].astype(np.int32))
  indptr = np.zeros(gram.shape[0] + 1, np.int64)
  if counts:
    np.cumsum(np.concatenate(counts), out=indptr[1:])
  return indptr, (np.concatenate(kept_items) if kept_items
                  else np.zeros(0, np.int32))


def solve_by_support(gram: sparse.csr_matrix, support_starts: np.ndarray,
                         support_items: np.ndarray,
                         l2_values: Sequence[float],
                         threads: int = 1) -> list[np.ndarray]:
  """EASE^R's regression of each column on its support
  (`top_co_occurring`) at each λ, G kept sparse, on `threads` threads.

  Returns:
    Per λ of `l2_values`, float32 weights aligned with `support_items`:
    B[support_items[p], j] for p in column j's support range.
  """
  gram.sort_indices()
  weights = [np.zeros(len(support_items), np.float32) for _ in l2_values]
  sizes = np.diff(support_starts)
  # Columns with supports of one size are solved together, a batch of
  # `[batch, size, size]` systems at a time: no padding, and at most
  # `support` sizes. One BLAS thread: numpy solves a batch one small system
  # after another, and OpenBLAS's threads on each made a batch of 1,000
  # 64 x 64 systems take 5.9 s instead of 0.04 s on 2 busy cores.
  # Batches run on a pool of threads instead: each writes its own columns'
  # weights.
  batches = []
  for size in np.unique(sizes[sizes > 0]):
    members = np.flatnonzero(sizes == size)
    batch = max(1, SOLVE_BLOCK_CELLS // (size * size))
    batches.extend(members[start:start + batch]
                   for start in range(0, len(members), batch))

  def solve_batch(columns: np.ndarray) -> None:
    positions = (support_starts[columns, np.newaxis]
                 + np.arange(sizes[columns[0]]))
    for path_weights, solved in zip(weights, solve_columns(
        gram, columns, support_items[positions], l2_values)):
      path_weights[positions] = solved

  with threadpoolctl.threadpool_limits(limits=1, user_api="blas"), \
      futures.ThreadPoolExecutor(threads) as pool:
    for _ in pool.map(solve_batch, batches):
      pass  # Re-raises a batch's error.
  return weights


def csr_lookup(matrix: sparse.csr_matrix, rows: np.ndarray,
               cols: np.ndarray) -> np.ndarray:
  """`matrix[rows[n], cols[n]]` for every n, 0 where nothing is stored.

  A binary search within each row, all rows at once: about 0.2 µs a read
  at any batch size. (scipy's `matrix[rows, cols]` scans each row instead
  when asked for fewer than a tenth of the stored entries: 26 µs a read
  in a Gram matrix of 68M entries, measured.)

  Args:
    matrix: CSR with sorted indices.
    rows: int row of each read.
    cols: int column of each read.

  Returns:
    The values, in `matrix`'s dtype.
  """
  if not matrix.nnz:
    return np.zeros(len(rows), matrix.dtype)
  low = matrix.indptr[rows].astype(np.int64)
  high = matrix.indptr[rows + 1].astype(np.int64)
  end = high.copy()
  last = matrix.nnz - 1
  for _ in range(int(np.max(high - low, initial=0)).bit_length()):
    middle = (low + high) >> 1
    below = (middle < high) & (matrix.indices[np.minimum(middle, last)] < cols)
    low = np.where(below, middle + 1, low)
    high = np.where(below, high, middle)
  found = low < end
  found[found] = matrix.indices[low[found]] == cols[found]
  return np.where(found, matrix.data[np.minimum(low, last)], 0).astype(
      matrix.dtype)


def gather_blocks(gram: sparse.csr_matrix, indices: np.ndarray) -> np.ndarray:
  """`[batch, s, s]` float64 G[indices[b, p], indices[b, q]] from a sparse G.

  G is symmetric, so only the upper triangle of each block is read
  (`csr_lookup`), then mirrored: reading dominates the approximation's
  time at a million items.

  Args:
    gram: G, CSR with sorted indices.
    indices: `[batch, s]` item indices.

  Returns:
    The dense sub-matrices, 0 where G stores nothing.
  """
  batch, size = indices.shape
  upper_rows, upper_cols = np.triu_indices(size)
  upper = csr_lookup(gram, indices[:, upper_rows].ravel(),
                     indices[:, upper_cols].ravel()).reshape(batch, -1)
  blocks = np.empty((batch, size, size))
  blocks[:, upper_rows, upper_cols] = upper
  blocks[:, upper_cols, upper_rows] = upper
  return blocks


def solve_columns(gram: sparse.csr_matrix, columns: np.ndarray,
                  indices: np.ndarray,
                  l2_values: Sequence[float]) -> list[np.ndarray]:
  """Solves (G_NN + λI) b = G_Nj for a batch of columns j, at each λ.

  Args:
    gram: G, CSR with sorted indices.
    columns: `[batch]` the columns j.
    indices: `[batch, s]` each column's support N.
    l2_values: the λ values.

  Returns:
    `[batch, s]` b at each λ.
  """
  blocks = gather_blocks(gram, indices)
  right = csr_lookup(gram, indices.ravel(),
                     np.repeat(columns, indices.shape[1])).astype(
                         np.float64).reshape(indices.shape)[:, :, np.newaxis]
  diagonal = np.arange(indices.shape[1])
  solved, added = [], 0.0
  for l2 in l2_values:
    blocks[:, diagonal, diagonal] += l2 - added
    added = l2
    solved.append(np.linalg.solve(blocks, right)[:, :, 0])
  return solved
