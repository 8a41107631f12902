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
  `support` items co-occurring most with j, G kept sparse
  (`models.item_item.ease_approx`): memory grows with the co-occurrences
  and `items * support²`, never with `items²`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Optional, Sequence

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from models import hparams
from models.item_item import ease_approx
from models.item_item import gram as gram_lib
from models.item_item import neighbours as item_neighbours

EXACT = "exact"
SPARSE_APPROX = "sparse_approx"
AUTO = "auto"
_SOLVERS = (AUTO, EXACT, SPARSE_APPROX)
# Bytes per non-zero of G as `gram.build` holds it: float32 count, int32
# column (`gram.index_bytes` below 2³¹ non-zeros).
_GRAM_BYTES_PER_NONZERO = 4 + 4
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


def support_entries(nonzeros_per_item: np.ndarray, support: int) -> int:
  """The entries `ease_approx.top_co_occurring` keeps, from G's non-zeros
  per item (`gram.nonzeros_per_item`): each item's co-occurring items but
  itself, at most `support` of them."""
  return int(np.minimum(np.maximum(nonzeros_per_item - 1, 0), support).sum())


def approx_memory_bytes(gram_nonzeros: int, num_items: int,
                        support_entries: int, neighbours: int,
                        path_length: int = 1, threads: int = 1) -> int:
  """Peak memory of a "sparse_approx" fit, X aside.

  While the columns are solved: G as `gram.build` holds it, the
  `support_entries` kept supports (`ease_approx.top_co_occurring`, summed
  over items; int32 item each), one float32 weight per support entry and λ
  of a path of `path_length`, and one batch of solve blocks per thread. G's
  ranking for the supports (one block of rows,
  `item_neighbours.ranking_peak_bytes`) comes before, and B's
  sparsification after, G is dropped: B's CSR copy of a λ (float32 weight,
  int32 column) and its ranking, with the kept neighbours
  (`[items, neighbours]`, int64 item and float32 weight).
  """
  supports = (4 + 4 * path_length) * support_entries
  solving = (_GRAM_BYTES_PER_NONZERO * gram_nonzeros + supports
             + _SOLVE_BYTES_PER_CELL * ease_approx.SOLVE_BLOCK_CELLS * threads)
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
  support_starts, support_items = ease_approx.top_co_occurring(
      gram, support_size)
  weights = ease_approx.solve_by_support(gram, support_starts, support_items,
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
