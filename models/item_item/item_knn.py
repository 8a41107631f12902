"""Item-kNN: cosine item-item similarity with shrinkage, top k per item.

With X the binary `[users, items]` interaction matrix and C = XᵀX the
co-occurrence counts, the similarity of items i and j is

    B[i, j] = C[i, j] / (sqrt(C[i, i]) * sqrt(C[j, j]) + shrinkage),

the cosine of their user columns, shrunk towards 0 when few users back it
(Koren 2008). Each item keeps its `neighbours` most similar items; a user's
score for item j is the sum of B[i, j] over their history items i, as for
EASE^R. Only co-occurring pairs are ever computed, a block of rows of C at
a time (`gram.row_blocks`), and each block keeps its top neighbours
(`item_neighbours.sparse_top_neighbours`) before the next is computed: C is
never held whole, so memory grows with `items * neighbours` and one block,
not with the co-occurring pairs (616M at 10M events) or the catalogue
squared. Pure numpy/scipy; the pipeline's train function is
`models.item_item.trainer.train`.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Optional, Sequence

import numpy as np
from scipy import sparse

from models import hparams
from models.item_item import gram as gram_lib
from models.item_item import neighbours as item_neighbours


@dataclasses.dataclass(frozen=True)
class ItemKnnConfig(hparams.HParams):
  """Item-kNN's hyperparameters.

  Attributes:
    neighbours: most similar items kept per item.
    shrinkage: added to the cosine's denominator; damps similarities of
      items with few users.
    neighbours_grid: the values tried when `neighbours` is None.
    shrinkage_grid: the values tried when `shrinkage` is None.
    memory_budget_gb: memory a fit may use, in GB (1e9 bytes); None: half
      the memory available when the fit starts
      (`gram.available_memory_bytes`). A fit whose `memory_bytes` pass it
      is refused before it starts.

  The Trainer tries every combination of the grids of the hyperparameters
  left None on a validation split carved from train
  (`models.item_item.tuning`); a number fixes one.
  """
  neighbours: Optional[int] = None
  shrinkage: Optional[float] = None
  neighbours_grid: tuple[int, ...] = (20, 50, 200)
  shrinkage_grid: tuple[float, ...] = (10.0, 100.0, 500.0)
  memory_budget_gb: Optional[float] = None


def memory_bytes(num_items: int, neighbours: int, block_entries: int) -> int:
  """Peak memory of a fit, X aside.

  Two `[items, neighbours]` results (the one being built and the previous
  one `fit_item_knn_each` gave) and one block of C of `block_entries`:
  float32 count and int32 column, its similarities' float64 temporaries and
  int64 rows, and their ranking.
  """
  return (2 * (8 + 4) * num_items * neighbours
          + block_entries * (4 + 4 + 8 * 4
                             + item_neighbours.RANKING_BYTES_PER_ENTRY))


def fit_item_knn(interactions: sparse.spmatrix,
                 config: ItemKnnConfig) -> item_neighbours.ItemNeighbours:
  """Keeps each item's `config.neighbours` most cosine-similar items.

  Args:
    interactions: binary `[users, num_items]` X.
    config: the hyperparameters.

  Returns:
    The shrunk cosine similarities B, sparsified.

  Raises:
    ValueError: if `neighbours` or `shrinkage` is unset, or the fit's
      `memory_bytes` pass `memory_budget_gb`.
  """
  return next(fit_item_knn_each(interactions, [config]))


def fit_item_knn_each(interactions: sparse.spmatrix,
                      configs: Sequence[ItemKnnConfig]
                      ) -> Iterator[item_neighbours.ItemNeighbours]:
  """`fit_item_knn` of each config, in order: a grid search's fits
  (`models.item_item.tuning.search`'s `fit_each`).

  Consecutive configs of one shrinkage share one pass over C, which keeps
  their largest `neighbours` and gives each its first ones: a grid ordered
  shrinkage first costs one pass per shrinkage, not one per setting.

  Raises:
    ValueError: as `fit_item_knn`, before any fit.
  """
  for config in configs:
    if config.neighbours is None or config.shrinkage is None:
      raise ValueError("item-kNN needs neighbours and shrinkage: set them, "
                       "or let the Trainer pick them from their grids "
                       "(models.item_item.tuning.search)")
  num_items = interactions.shape[1]
  most_neighbours = max(config.neighbours for config in configs)
  need = memory_bytes(num_items, min(most_neighbours, num_items),
                     gram_lib.block_entries(interactions))
  budgets = {gram_lib.memory_budget_bytes(config.memory_budget_gb)
             for config in configs}
  if need > min(budgets):
    raise ValueError(
        f"item-kNN on {num_items:,} items with neighbours={most_neighbours} "
        f"needs about {need / 1e9:.1f} GB, above memory_budget_gb="
        f"{min(budgets) / 1e9:.1f}: lower neighbours, or raise "
        "memory_budget_gb on a machine with that memory")
  interactions = sparse.csr_matrix(interactions, dtype=np.float32)
  # C's diagonal: each item's user count, since X is binary.
  norms = np.sqrt(np.asarray(interactions.sum(axis=0), np.float64).ravel())
  for shrinkage, group in itertools.groupby(configs,
                                            key=lambda config: config.shrinkage):
    group = list(group)
    kept = _top_similar(interactions, norms, shrinkage,
                        max(config.neighbours for config in group))
    for config in group:
      yield item_neighbours.ItemNeighbours(
          kept.indices[:, :config.neighbours],
          kept.weights[:, :config.neighbours])


def _top_similar(interactions: sparse.csr_matrix, norms: np.ndarray,
                 shrinkage: float,
                 neighbours: int) -> item_neighbours.ItemNeighbours:
  """Each item's `neighbours` largest shrunk cosines, a block of C's rows at
  a time."""
  kept = []
  for start, block in gram_lib.row_blocks(interactions):
    rows = np.repeat(np.arange(start, start + block.shape[0]),
                     np.diff(block.indptr))
    # Only co-occurring pairs have a similarity; every other one is exactly
    # 0, so the sparse top k ranks as the dense rows would.
    block.data = (block.data / (norms[rows] * norms[block.indices]
                                + shrinkage)).astype(np.float32)
    kept.append(item_neighbours.sparse_top_neighbours(block, neighbours,
                                                      first_row=start))
  return item_neighbours.ItemNeighbours(
      np.concatenate([top.indices for top in kept]),
      np.concatenate([top.weights for top in kept]))
