"""EASE^R (Steck 2019): one closed-form ridge regression, item on items.

With X the binary `[users, items]` interaction matrix and the Gram matrix
G = XᵀX, EASE^R's weights are B = I - P / diag(P) (column j divided by
P[j, j]), P = (G + λI)⁻¹: the least-squares item-item regression under the
constraint diag(B) = 0. A user's score for item j is the sum of B[i, j]
over their history items i. Pure numpy/scipy; the pipeline's train function
is `models.item_item.trainer.train`.

Two solvers, `EaseConfig.solver` picks ("auto": exact iff it fits the
memory budget):

* "exact": P from a float32 Cholesky factorisation of the dense G + λI,
  inverted in place (LAPACK `spotrf` + `spotri` through
  `scipy.linalg.lapack`): one dense `[items, items]` float32 matrix alive at
  the peak (`exact_memory_bytes`), half what float64 needs, and no LU. The
  float64 `scipy.linalg.inv` (LU, `getrf` + `getri`) it replaces died with
  signal 11 inside OpenBLAS at 23,074 items on a 24 GB machine; the
  Cholesky pair ran that size in a child process here. Time grows with the
  cube of the catalogue.
* "sparse_approx": EASE^R's closed form restricted, per column j, to the
  `support` items co-occurring most with j: b_j solves
  (G_NN + λI) b_j = G_Nj with N the support, j excluded (so diag(B) = 0
  holds by construction), every other weight of column j 0. The support is
  fsSLIM's feature selection (Ning & Karypis, "SLIM: Sparse Linear Methods
  for Top-N Recommender Systems", ICDM 2011), the regression EASE^R's.
  G stays sparse; columns are solved in batches of `[batch, s, s]` blocks
  (read from G by a binary search per entry, upper triangle only), the
  batches shared by a thread per CPU,
  so memory grows with the co-occurrences and `items * support²`, never
  with `items²`. An item co-occurring with fewer than `support` items gets
  them all; when every pair of items co-occurs and `support >= items - 1`
  the result is exact EASE^R.
"""

from __future__ import annotations

from concurrent import futures
import dataclasses
import os
from typing import Iterator, Optional, Sequence

import numpy as np
from scipy import sparse
from scipy.linalg import lapack
import threadpoolctl

from models import hparams
from models.item_item import gram as gram_lib
from models.item_item import neighbours as item_neighbours

EXACT = "exact"
SPARSE_APPROX = "sparse_approx"
AUTO = "auto"
_SOLVERS = (AUTO, EXACT, SPARSE_APPROX)
# Bytes per non-zero of G as `gram.build` holds it: float32 count, int32
# column (`gram.index_bytes` below 2³¹ non-zeros).
_GRAM_BYTES_PER_NONZERO = 4 + 4
# Cells of the `[batch, s, s]` blocks solved at once by the approximation:
# its float64 blocks, their indices and the solver's copy stay a few
# hundred MiB.
_SOLVE_BLOCK_CELLS = 1 << 22
# Bytes per cell of a solve block: float64 value, the solver's float64 copy,
# and per upper-triangle cell two int64 item indices and the value read.
_SOLVE_BYTES_PER_CELL = 8 * 4


@dataclasses.dataclass(frozen=True)
class EaseConfig(hparams.HParams):
  """EASE^R's hyperparameters.

  Attributes:
    l2: λ, the ridge penalty on B. Steck's MovieLens-20M/Netflix values are
      in the hundreds to thousands; it grows with the interaction count.
      None: the Trainer picks it from `l2_grid` on a validation split carved
      from train (`models.item_item.tuning`); a number fixes it.
    l2_grid: the λ values tried when `l2` is None, log spaced.
    neighbours: B[i, :] entries kept per item i (its largest weights).
    solver: "exact" (dense float32 Cholesky), "sparse_approx" (per column,
      the `support` most co-occurring items only) or "auto": exact iff its
      `exact_memory_bytes` fit `memory_budget_gb`.
    support: items each column of B is regressed on by "sparse_approx".
      128 by time to quality (benchmarks/results/ease_support_grocery.json,
      Amazon Grocery, λ 500): it matches exact EASE^R on Recall@10/50 and
      NDCG@10 (0.0770 / 0.1676 / 0.0437 vs 0.0753 / 0.1657 / 0.0430); 64
      loses 0.005 Recall@50; 256 costs about 2.5x 128's reads of G at a
      million items for no gain.
    memory_budget_gb: memory a fit may use, in GB (1e9 bytes); None: half
      the memory available when the fit starts
      (`gram.available_memory_bytes`).
    solve_threads: threads "sparse_approx" solves its columns on (reading G
      and numpy's batched solve release the GIL); None: one per CPU this
      process may run on.
  """
  l2: Optional[float] = None
  l2_grid: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
  neighbours: int = 200
  solver: str = AUTO
  support: int = 128
  memory_budget_gb: Optional[float] = None
  solve_threads: Optional[int] = None


def memory_budget_bytes(config: EaseConfig) -> int:
  """`config.memory_budget_gb`, or its default share of the memory now
  (`gram.memory_budget_bytes`)."""
  return gram_lib.memory_budget_bytes(config.memory_budget_gb)


def solve_threads(config: EaseConfig) -> int:
  """`config.solve_threads`, or one per CPU this process may run on."""
  if config.solve_threads is not None:
    if config.solve_threads < 1:
      raise ValueError(f"solve_threads={config.solve_threads}: at least 1")
    return config.solve_threads
  if hasattr(os, "sched_getaffinity"):  # Linux: the CPUs this process may use.
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def exact_memory_bytes(num_items: int, gram_nonzeros: int) -> int:
  """Peak memory of an exact fit, X aside.

  The dense float32 G + λI, factorised and inverted in place (one
  `[items, items]` matrix), the sparse G it came from (`gram.build`), and
  the blocks of rows of B being sparsified
  (`item_neighbours.BLOCK_PEAK_BYTES`).
  """
  return (4 * num_items * num_items + _GRAM_BYTES_PER_NONZERO * gram_nonzeros
          + item_neighbours.BLOCK_PEAK_BYTES)


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


def support_entries(nonzeros_per_item: np.ndarray, support: int) -> int:
  """The entries `top_co_occurring` keeps, from G's non-zeros per item
  (`gram.nonzeros_per_item`): each item's co-occurring items but itself, at
  most `support` of them."""
  return int(np.minimum(np.maximum(nonzeros_per_item - 1, 0), support).sum())


def approx_memory_bytes(gram_nonzeros: int, num_items: int,
                        support_entries: int, neighbours: int,
                        path_length: int = 1, threads: int = 1) -> int:
  """Peak memory of a "sparse_approx" fit, X aside.

  While the columns are solved: G as `gram.build` holds it, the
  `support_entries` kept supports (`top_co_occurring`, summed over items;
  int32 item each), one float32 weight per support entry and λ of a path of
  `path_length`, and one batch of solve blocks per thread. G's ranking for the
  supports (one block of rows, `item_neighbours.ranking_peak_bytes`) comes
  before, and B's sparsification after, G is dropped: B's CSR copy of a
  λ (float32 weight, int32 column) and its ranking, with the kept
  neighbours (`[items, neighbours]`, int64 item and float32 weight).
  """
  supports = (4 + 4 * path_length) * support_entries
  solving = (_GRAM_BYTES_PER_NONZERO * gram_nonzeros + supports
             + _SOLVE_BYTES_PER_CELL * _SOLVE_BLOCK_CELLS * threads)
  ranking_supports = (
      _GRAM_BYTES_PER_NONZERO * gram_nonzeros
      + item_neighbours.ranking_peak_bytes(gram_nonzeros, num_items))
  sparsifying = (
      supports + 8 * support_entries
      + item_neighbours.ranking_peak_bytes(support_entries, num_items)
      + 12 * num_items * neighbours)
  return max(solving, ranking_supports, sparsifying)


def fit_ease(interactions: sparse.spmatrix,
             config: EaseConfig) -> item_neighbours.ItemNeighbours:
  """Fits EASE^R and keeps each item's top `config.neighbours` weights.

  Args:
    interactions: binary `[users, num_items]` X.
    config: the hyperparameters.

  Returns:
    The sparsified B.

  Raises:
    ValueError: if λ is unset, the solver unknown, or the chosen solver's
      memory is above `memory_budget_gb`.
  """
  return next(fit_ease_path(interactions, config, [config.l2]))


def fit_ease_each(interactions: sparse.spmatrix,
                  configs: Sequence[EaseConfig]
                  ) -> Iterator[item_neighbours.ItemNeighbours]:
  """`fit_ease` of each config, as one `fit_ease_path`: the configs of a λ
  search (`models.item_item.tuning.search`'s `fit_each`).

  Raises:
    ValueError: if the configs differ in more than λ.
  """
  if len({dataclasses.replace(config, l2=None) for config in configs}) > 1:
    raise ValueError("fit_ease_each fits configs that differ in l2 alone")
  return fit_ease_path(interactions, configs[0],
                       [config.l2 for config in configs])


def fit_ease_path(interactions: sparse.spmatrix, config: EaseConfig,
                  l2_values: Sequence[float]
                  ) -> Iterator[item_neighbours.ItemNeighbours]:
  """`fit_ease` at each λ of `l2_values` in turn, `config` otherwise.

  One Gram matrix serves every λ. The approximation also reads each
  column's system from G once for all of them (a regularisation path):
  that read is its cost at a million items, the solves are not. So a λ
  search over a grid costs about one approximate fit, not one per λ.

  Args:
    interactions: binary `[users, num_items]` X.
    config: the hyperparameters but λ.
    l2_values: the λ of each fit.

  Yields:
    The sparsified B of each λ, in order.

  Raises:
    ValueError: as `fit_ease`, before any fit.
  """
  if any(l2 is None for l2 in l2_values):
    raise ValueError("EASE^R needs a λ: set l2, or let the Trainer pick it "
                     "from l2_grid (models.item_item.tuning.search)")
  if config.solver not in _SOLVERS:
    raise ValueError(f"EASE^R solver={config.solver!r}; known: {_SOLVERS}")
  num_items = interactions.shape[1]
  interactions = sparse.csr_matrix(interactions, dtype=np.float32)
  # Sized before it is built: at 10M events G alone passed 19 GiB.
  per_item = gram_lib.nonzeros_per_item(interactions)
  gram_nonzeros = int(per_item.sum())
  budget = memory_budget_bytes(config)
  exact_bytes = exact_memory_bytes(num_items, gram_nonzeros)
  solver = config.solver
  if solver == AUTO:
    solver = EXACT if exact_bytes <= budget else SPARSE_APPROX
  if solver == EXACT:
    if exact_bytes > budget:
      raise ValueError(
          f"exact EASE^R on {num_items} items holds a dense {num_items} x "
          f"{num_items} float32 matrix, about {exact_bytes / 1e9:.1f} GB, "
          f"above memory_budget_gb={budget / 1e9:.1f}: use solver='auto' or "
          "'sparse_approx', or raise memory_budget_gb on a machine with that "
          "memory")
    gram = gram_lib.build(interactions, per_item)
    for l2 in l2_values:
      yield _fit_exact(gram, l2, config.neighbours)
    return
  support_size = min(config.support, max(num_items - 1, 1))
  threads = solve_threads(config)
  approx_bytes = approx_memory_bytes(gram_nonzeros, num_items,
                                     support_entries(per_item, support_size),
                                     config.neighbours, len(l2_values),
                                     threads)
  if approx_bytes > budget:
    raise ValueError(
        f"approximate EASE^R on {num_items} items with support="
        f"{config.support} and neighbours={config.neighbours} needs about "
        f"{approx_bytes / 1e9:.1f} GB for a co-occurrence matrix of "
        f"{gram_nonzeros:,} non-zeros, above memory_budget_gb="
        f"{budget / 1e9:.1f}: lower support or neighbours, raise "
        "memory_budget_gb, or train it on fewer events")
  gram = gram_lib.build(interactions, per_item)
  support_starts, support_items = top_co_occurring(gram, support_size)
  weights = _solve_sparse_approx(gram, support_starts, support_items,
                                 l2_values, threads)
  del gram
  for path_weights in weights:
    # Column j of B holds its support's weights: (weights, support) is Bᵀ
    # as CSR, and B's rows are what is kept.
    b = sparse.csr_matrix((path_weights, support_items, support_starts),
                          shape=(num_items, num_items)).T.tocsr()
    yield item_neighbours.sparse_top_neighbours(b, config.neighbours)
    del b


def _fit_exact(gram: sparse.csr_matrix, l2: float,
               neighbours: int) -> item_neighbours.ItemNeighbours:
  """Exact EASE^R from the sparse G: float32 Cholesky, inverted in place."""
  num_items = gram.shape[0]
  # Fortran order lets LAPACK work on this very buffer (overwrite_*).
  precision = gram.toarray(order="F")
  precision[np.diag_indices(num_items)] += l2
  factor, info = lapack.spotrf(precision, lower=True, overwrite_a=True,
                               clean=False)
  if info != 0:
    raise ValueError(f"G + λI is not positive definite (spotrf info={info}); "
                     f"l2={l2} must be > 0")
  precision, info = lapack.spotri(factor, lower=True, overwrite_c=True)
  del factor
  if info != 0:
    raise ValueError(f"inverting G + λI failed (spotri info={info})")
  # Only P's lower triangle is written: row i of P is P[i, :i+1] then
  # P[i+1:, i], read block by block so that no second dense matrix exists.
  diagonal = precision.diagonal().copy()
  columns = np.arange(num_items)

  def rows_of_b(rows: slice) -> np.ndarray:
    row_ids = columns[rows, np.newaxis]
    block = np.where(columns <= row_ids, precision[rows, :],
                     precision[:, rows].T)
    # B[i, j] = -P[i, j] / P[j, j] off the diagonal; the diagonal is dropped
    # when the neighbours are kept.
    block /= -diagonal
    return block

  return item_neighbours.top_neighbours(rows_of_b, num_items, neighbours)


def _solve_sparse_approx(gram: sparse.csr_matrix, support_starts: np.ndarray,
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
    batch = max(1, _SOLVE_BLOCK_CELLS // (size * size))
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
