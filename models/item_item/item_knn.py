"""Item-kNN: cosine item-item similarity with shrinkage, top k per item.

With X the binary `[users, items]` interaction matrix and C = XᵀX the
co-occurrence counts, the similarity of items i and j is

    B[i, j] = C[i, j] / (sqrt(C[i, i]) * sqrt(C[j, j]) + shrinkage),

the cosine of their user columns, shrunk towards 0 when few users back it
(Koren 2008). Each item keeps its `neighbours` most similar items; a user's
score for item j is the sum of B[i, j] over their history items i, as for
EASE^R. Memory grows with the number of co-occurring pairs, not with the
square of the catalogue: only co-occurring pairs are ever computed
(`item_neighbours.sparse_top_neighbours`). Pure numpy/scipy; the pipeline's train function is
`models.item_item.trainer.train`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

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
      (`gram.available_memory_bytes`). A co-occurrence matrix that would
      pass it is refused before it is built (`gram.checked_gram`).

  The Trainer tries every combination of the grids of the hyperparameters
  left None on a validation split carved from train
  (`models.item_item.tuning`); a number fixes one.
  """
  neighbours: Optional[int] = None
  shrinkage: Optional[float] = None
  neighbours_grid: tuple[int, ...] = (20, 50, 200)
  shrinkage_grid: tuple[float, ...] = (10.0, 100.0, 500.0)
  memory_budget_gb: Optional[float] = None


def fit_item_knn(interactions: sparse.spmatrix,
                 config: ItemKnnConfig) -> item_neighbours.ItemNeighbours:
  """Keeps each item's `config.neighbours` most cosine-similar items.

  Args:
    interactions: binary `[users, num_items]` X.
    config: the hyperparameters.

  Returns:
    The shrunk cosine similarities B, sparsified.

  Raises:
    ValueError: if `neighbours` or `shrinkage` is unset.
  """
  if config.neighbours is None or config.shrinkage is None:
    raise ValueError("item-kNN needs neighbours and shrinkage: set them, or "
                     "let the Trainer pick them from their grids "
                     "(models.item_item.tuning.search)")
  interactions = sparse.csr_matrix(interactions, dtype=np.float64)
  co_occurrences = gram_lib.checked_gram(
      interactions, gram_lib.memory_budget_bytes(config.memory_budget_gb),
      gram_lib.ITEM_KNN_BYTES_PER_NONZERO, "item-kNN").tocoo()
  norms = np.sqrt(co_occurrences.diagonal())
  # Only co-occurring pairs have a similarity; every other one is exactly 0,
  # so the sparse top k ranks as the dense rows would.
  similarities = sparse.csr_matrix(
      (co_occurrences.data / (norms[co_occurrences.row]
                              * norms[co_occurrences.col] + config.shrinkage),
       (co_occurrences.row, co_occurrences.col)),
      shape=co_occurrences.shape)
  return item_neighbours.sparse_top_neighbours(similarities, config.neighbours)
