"""EASE^R (Steck 2019): one closed-form ridge regression, item on items.

With X the binary `[users, items]` interaction matrix and the Gram matrix
G = XᵀX, EASE^R's weights are B = I - P / diag(P) (column j divided by
P[j, j]), P = (G + λI)⁻¹: the least-squares item-item regression under the
constraint diag(B) = 0. A user's score for item j is the sum of B[i, j]
over their history items i. Pure numpy/scipy; the pipeline's train function
is `models.item_item_trainer.train_ease`.

Exact EASE^R holds G and its inverse as dense `[items, items]` float64
matrices, so memory grows with the square of the catalogue: `max_items`
refuses larger catalogues, with a message saying what they would need.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import scipy.linalg
from scipy import sparse

from models import hparams
from models import item_neighbours

# Dense float64 item-item matrices alive at the peak of a fit: the Gram
# matrix is inverted in place, and the sparse Gram matrix it came from and
# one block of rows being sparsified come on top.
_PEAK_DENSE_MATRICES = 2


@dataclasses.dataclass(frozen=True)
class EaseConfig(hparams.HParams):
  """EASE^R's hyperparameters.

  Attributes:
    l2: λ, the ridge penalty on B. Steck's MovieLens-20M/Netflix values are
      in the hundreds to thousands; it grows with the interaction count.
      None: the Trainer picks it from `l2_grid` on a validation split carved
      from train (`models.item_item_tuning`); a number fixes it.
    l2_grid: the λ values tried when `l2` is None, log spaced.
    neighbours: B[i, :] entries kept per item i (its largest weights).
    max_items: the largest catalogue (item indices, padding and OOV
      included) fitted exactly; above it `fit_ease` refuses. 20,000 items
      need about 6.4 GB (`dense_memory_bytes`).
  """
  l2: Optional[float] = None
  l2_grid: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
  neighbours: int = 200
  max_items: int = 20_000


def dense_memory_bytes(num_items: int) -> int:
  """Memory of the dense matrices of an exact fit on `num_items` items."""
  return _PEAK_DENSE_MATRICES * num_items * num_items * 8


def fit_ease(interactions: sparse.spmatrix,
             config: EaseConfig) -> item_neighbours.ItemNeighbours:
  """Fits EASE^R and keeps each item's top `config.neighbours` weights.

  Args:
    interactions: binary `[users, num_items]` X.
    config: the hyperparameters.

  Returns:
    The sparsified B.

  Raises:
    ValueError: if `num_items` exceeds `config.max_items`, or λ is unset.
  """
  num_items = interactions.shape[1]
  if num_items > config.max_items:
    raise ValueError(
        f"EASE^R inverts a dense {num_items} x {num_items} matrix, about "
        f"{dense_memory_bytes(num_items) / 1e9:.1f} GB, above its max_items="
        f"{config.max_items} ({dense_memory_bytes(config.max_items) / 1e9:.1f}"
        " GB): use the item_knn family, whose memory grows with the number "
        "of co-occurrences, or raise --hparam max_items=... on a machine "
        "with that memory")
  if config.l2 is None:
    raise ValueError("EASE^R needs a λ: set l2, or let the Trainer pick it "
                     "from l2_grid (models.item_item_tuning.search)")
  interactions = sparse.csr_matrix(interactions, dtype=np.float64)
  precision = (interactions.T @ interactions).toarray()
  precision[np.diag_indices(num_items)] += config.l2
  precision = scipy.linalg.inv(precision, overwrite_a=True,
                               check_finite=False)
  # B[i, j] = -P[i, j] / P[j, j] off the diagonal; the diagonal is dropped
  # when the neighbours are kept.
  precision /= -np.diag(precision).copy()
  return item_neighbours.top_neighbours(lambda rows: precision[rows],
                                        num_items, config.neighbours)

