"""EASE^R and item-kNN rows for the offline benchmarks, tuned on validation.

The product's closed-form families (`models.item_item.ease.fit_ease`,
`models.item_item.item_knn.fit_item_knn`) fitted and scored under a benchmark's own
protocol, so that every offline table can show them beside its models. The
benchmark owns its split and its metric; this module only fits, picks and
scores:

- `history_matrix(histories, num_items)`: the binary `[users, num_items]`
  matrix X of per-user item index arrays (padding index 0 dropped), what the
  families fit on and what a user is scored by.
- `search_settings(family)`: every combination of the hyperparameter grids
  declared in the family's product config (`EaseConfig.l2_grid`;
  `ItemKnnConfig.shrinkage_grid` x `neighbours_grid`), from the product's
  one table of fitters (`models.item_item.fitters.FITTERS`), which the
  pipeline's Trainer searches too.
- `tune(family, train, validate)`: fits each setting on `train` and keeps the
  one with the highest `validate(scorer)`, where `validate` is the
  benchmark's validation metric (it must read validation targets carved from
  train, never test). Nothing is refitted: the caller decides whether to
  refit the chosen setting (`fit`) on more rows.
- `ItemItemScorer(neighbours, histories)`: `score_all(users)` over the whole
  catalogue and `score_items(items)` of per-user candidates, both the sum of
  the users' history rows of B (`models.item_item.neighbours`).

The API above is stable: other benchmarks import it.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Callable, Sequence

import numpy as np
from scipy import sparse

from data import features
from models.item_item import fitters
from models.item_item import neighbours as item_neighbours

# Users whose dense catalogue-wide scores `score_items` holds at once.
_USERS_PER_BLOCK = 1024


def history_matrix(histories: Sequence[np.ndarray],
                   num_items: int) -> sparse.csr_matrix:
  """Binary `[len(histories), num_items]` X; row u marks `histories[u]`.

  Args:
    histories: per user, the item indices they interacted with (any order,
      repeats and the padding index 0 allowed; padding is dropped).
    num_items: columns of X (every item index, padding included).
  """
  users = np.repeat(np.arange(len(histories)),
                    [len(history) for history in histories])
  items = (np.concatenate(histories).astype(np.int64) if len(histories)
           else np.zeros(0, np.int64))
  real = items != features.PADDING_INDEX
  matrix = item_neighbours.interaction_matrix(users[real], items[real],
                                              num_items)
  # `interaction_matrix` sizes the rows by the largest user seen; users
  # with nothing (or only padding) still need their empty row.
  matrix.resize((len(histories), num_items))
  return matrix


def search_settings(family: str, config: Any = None) -> list[Any]:
  """Every combination of the grids `config` declares (default: the
  family's product defaults), as configs."""
  spec = fitters.FITTERS[family]
  config = spec.default_config if config is None else config
  grids = spec.grids(config)
  return [dataclasses.replace(config, **dict(zip(grids, values)))
          for values in itertools.product(*grids.values())]


class ItemItemScorer:
  """Scores users by an item-item B over their histories.

  Args:
    neighbours: the fitted B.
    histories: `[users, num_items]` X of the histories the scores read
      (`history_matrix`).
  """

  def __init__(self, neighbours: item_neighbours.ItemNeighbours,
               histories: sparse.spmatrix):
    self.neighbours = neighbours
    self.histories = sparse.csr_matrix(histories)
    self._b = neighbours.matrix()

  def score_all(self, users: np.ndarray) -> np.ndarray:
    """`[len(users), num_items]` scores of `users` (row indices of X)."""
    return np.asarray((self.histories[np.asarray(users)] @ self._b)
                      .todense())

  def score_items(self, items: np.ndarray) -> np.ndarray:
    """`[U, C]` scores of user u (row u of X) for `items[u]`, `[U, C]`."""
    items = np.asarray(items)
    scores = np.empty(items.shape, np.float64)
    for start in range(0, len(items), _USERS_PER_BLOCK):
      users = np.arange(start, min(start + _USERS_PER_BLOCK, len(items)))
      scores[users] = np.take_along_axis(self.score_all(users), items[users],
                                         axis=1)
    return scores


@dataclasses.dataclass(frozen=True)
class Tuned:
  """The outcome of `tune`.

  Attributes:
    config: the chosen setting (the first of equals).
    neighbours: B fitted with it on the `train` given to `tune`.
    validation: per setting tried, in order: `{"hparams": the searched
      values, "validation": the metric, "fit_s": seconds of the fit}`.
  """
  config: Any
  neighbours: item_neighbours.ItemNeighbours
  validation: list[dict]


def tune(family: str, train: sparse.spmatrix,
         validate: Callable[[item_neighbours.ItemNeighbours], float],
         settings: Sequence[Any] | None = None) -> Tuned:
  """Fits each setting on `train`; keeps the best by `validate`.

  Args:
    family: "ease" or "item_knn".
    train: `[users, num_items]` X to fit on.
    validate: fitted B -> the validation metric, higher is better. It must
      score validation targets held out of `train`.
    settings: the configs to try; default `search_settings(family)`.

  Returns:
    The chosen setting, its fit and every setting's validation metric.
  """
  spec = fitters.FITTERS[family]
  settings = list(search_settings(family) if settings is None else settings)
  searched = list(spec.grids(spec.default_config))
  best = None
  validation = []
  for config in settings:
    started = time.perf_counter()
    neighbours = spec.fit(train, config)
    fit_s = time.perf_counter() - started
    metric = float(validate(neighbours))
    validation.append({"hparams": {name: getattr(config, name)
                                   for name in searched},
                       "validation": metric, "fit_s": round(fit_s, 3)})
    if best is None or metric > best[0]:
      best = (metric, config, neighbours)
  if best is None:
    raise ValueError(f"no {family} settings to try")
  return Tuned(config=best[1], neighbours=best[2], validation=validation)
