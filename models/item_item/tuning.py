"""Hyperparameter search of the item-item families on a split carved from train.

The eval split only ever scores the exported model, so EASE^R's λ and
item-kNN's neighbours and shrinkage are picked on validation rows carved
from the train split: each user's newest train positive
(`data.splits.latest_per_user_mask`), the same leave-last-out shape as eval
one step earlier. Each setting is fitted on the other train rows and scored by
full-catalogue Recall@50 of the validation rows' targets, queried by their
own history as the exported `evaluate` signature queries an eval example,
under its protocol (the user's other train items and items without train
positives excluded, ties against the target); Recall@10 and NDCG@10 are
recorded beside it for the run's selection. The best setting's fit is
returned with how long the search's first fit took, so the caller
(`models.item_item.trainer`) can refit it on every train row when its time
budget holds one more fit, and export the search's fit when it does not.
Pure numpy/scipy.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse

from data import features
from data import splits
from models.item_item import neighbours as item_neighbours
from models import learning_curve
from models import validation_scores

METRIC = validation_scores.SELECTION_METRIC
# The rank of a target that can never be recommended: no cut-off reaches it.
UNRANKED = np.iinfo(np.int64).max
# Validation queries scored at once; their scores are kept sparse.
_QUERY_BLOCK = 1024

Fit = Callable[[sparse.spmatrix, Any], item_neighbours.ItemNeighbours]
# Fits of several settings on one X, in order: a family whose settings share
# work (EASE^R's λ path, `models.item_item.ease.fit_ease_each`) does it once.
FitEach = Callable[[sparse.spmatrix, Sequence[Any]],
                   Iterable[item_neighbours.ItemNeighbours]]


@dataclasses.dataclass(frozen=True)
class TrainRows:
  """The train split's positives, one row per example.

  Only each user's newest row needs its history: it is the validation
  row's query (`splits.latest_per_user_mask`). Keeping every row's would
  cost `history_length` ids per row, 4 GB at 10M rows (the baselines' fit
  process passed 8 GiB reading them at 10M x 1M).

  Attributes:
    users: `[n]` user index.
    items: `[n]` target item index.
    timestamps: `[n]` anything ordered like the examples' times.
    latest_histories: `[users, history_length]` the earlier item indices
      (padding 0) of each user's newest row, the last in row order among
      equal times, as `splits.latest_per_user_mask` marks it; row u is
      user index u.
  """
  users: np.ndarray
  items: np.ndarray
  timestamps: np.ndarray
  latest_histories: np.ndarray

  def interactions(self, num_items: int,
                   keep: np.ndarray | None = None) -> sparse.csr_matrix:
    """Binary `[users, num_items]` X of the rows `keep` marks (default all)."""
    keep = np.ones(len(self.users), bool) if keep is None else keep
    return item_neighbours.interaction_matrix(self.users[keep],
                                              self.items[keep], num_items)


@dataclasses.dataclass(frozen=True)
class SearchFit:
  """The chosen setting as the search fitted it.

  Attributes:
    neighbours: its B, fitted on every train row but the validation rows
      (each user's newest); None unless the search was asked to keep it.
    first_fit_seconds: wall seconds from the start of the fits to the first
      setting's B: what one fit of the family costs on these rows, work
      that settings share (EASE^R's Gram matrix) included.
  """
  neighbours: item_neighbours.ItemNeighbours | None
  first_fit_seconds: float


def validation_ranks(neighbours: item_neighbours.ItemNeighbours,
                     histories: np.ndarray, seen: sparse.spmatrix,
                     targets: np.ndarray, servable: np.ndarray) -> np.ndarray:
  """The full-catalogue rank of each of `targets`, queried by its history.

  The protocol of the exported `evaluate` signature: every item the user
  already has is excluded except the target itself (a repeat is still a
  right answer), items without train positives are never ranked, and ties
  count against the target.

  Scores stay sparse (`histories @ B` stores only the items reachable from
  a history), and an item without a stored score scores 0: a target is
  ranked by counting the stored scores at or above its own, plus every
  other competitor when its own is at most 0. So the cost grows with the
  stored scores, not with queries x items (133 s for 25k queries at a
  million items when every block was dense).

  Args:
    neighbours: the fitted B.
    histories: `[n, history_length]` item indices the model reads, padding 0.
    seen: `[n, num_items]` every item each query's user already has.
    targets: `[n]` the item each query chose next.
    servable: `[num_items]` items that can be recommended at all.

  Returns:
    `[n]` 0-based ranks; `UNRANKED` for a target that is not servable.
  """
  b = neighbours.matrix()
  seen = sparse.csr_matrix(seen)
  return np.concatenate([np.zeros(0, np.int64)] + [
      _ranks(b, histories[block], seen[block], targets[block], servable)
      for block in (slice(start, start + _QUERY_BLOCK)
                    for start in range(0, len(targets), _QUERY_BLOCK))])


def _ranks(b: sparse.csr_matrix, histories: np.ndarray, seen: sparse.spmatrix,
           targets: np.ndarray, servable: np.ndarray) -> np.ndarray:
  """A block's target ranks (`validation_ranks`)."""
  num_items = b.shape[0]
  queries = np.arange(len(targets))
  real = histories.ravel() != features.PADDING_INDEX
  counts = sparse.csr_matrix(
      (np.ones(int(real.sum()), np.float32),
       (np.repeat(queries, histories.shape[1])[real], histories.ravel()[real])),
      shape=(len(targets), num_items))
  scores = (counts @ b).tocoo()
  score_keys = scores.row.astype(np.int64) * num_items + scores.col
  # Not competing: history items, items seen before, the target itself.
  seen = sparse.coo_matrix(seen)
  history = counts.tocoo()
  excluded_keys = np.unique(np.concatenate([
      history.row.astype(np.int64) * num_items + history.col,
      seen.row.astype(np.int64) * num_items + seen.col,
      queries * num_items + targets]))
  order = np.argsort(score_keys)
  score_keys, values = score_keys[order], scores.data[order]
  rows, cols = score_keys // num_items, score_keys % num_items
  target_keys = queries * num_items + targets
  at = np.minimum(np.searchsorted(score_keys, target_keys),
                  max(len(score_keys) - 1, 0))
  target_scores = np.zeros(len(targets), values.dtype)
  if len(score_keys):
    stored = score_keys[at] == target_keys
    target_scores[stored] = values[at[stored]]
  competing = servable[cols] & ~np.isin(score_keys, excluded_keys)
  ahead = np.bincount(rows[competing & (values >= target_scores[rows])],
                      minlength=len(targets))
  # Competitors without a stored score score 0: servable items that are
  # neither stored nor excluded.
  covered_keys = np.union1d(score_keys, excluded_keys)
  covered = np.bincount((covered_keys // num_items)[
      servable[covered_keys % num_items]], minlength=len(targets))
  ahead += np.where(target_scores <= 0, int(servable.sum()) - covered, 0)
  return np.where(servable[targets], ahead, UNRANKED).astype(np.int64)


def _step(setting: Mapping[str, Any]) -> Any:
  """A point's step: the value tried, or `name=value, ...` for several."""
  if len(setting) == 1:
    return next(iter(setting.values()))
  return ", ".join(f"{name}={value}" for name, value in setting.items())


def search(fit: Fit, config, grids: Mapping[str, Sequence], rows: TrainRows,
           servable: np.ndarray, family: str, fit_each: FitEach | None = None,
           keep_best_fit: bool = False) -> tuple[Any, learning_curve.LearningCurve | None,
                      SearchFit | None]:
  """Fits each grid setting without the validation rows; picks the best.

  Args:
    fit: the family's fit, `(interactions, config) -> ItemNeighbours`.
    config: the family's config; the hyperparameters it leaves None are
      searched over their grid, every combination.
    grids: hyperparameter name -> the values to try.
    rows: the train split's positives.
    servable: `[num_items]` items that can be recommended.
    family: the family's name, for the curve.
    fit_each: fits every setting's config in turn; None: `fit` on each.
    keep_best_fit: whether to return the best setting's B, which then stays
      alive beside the next setting's during the search (at a million items
      up to 2 GB more); else each B is freed once it is scored.

  Returns:
    The best setting (the first of equals), the curve of every setting and
    the search's fit (`SearchFit`); `(config, None, None)` when `config`
    fixes every searched hyperparameter.
  """
  free = {name: grid for name, grid in grids.items()
          if getattr(config, name) is None}
  if not free:
    return config, None, None
  num_items = len(servable)
  held_out = splits.latest_per_user_mask(rows.users, rows.timestamps)
  fit_interactions = rows.interactions(num_items, keep=~held_out)
  # The model's Trainer scores the same users (`scored_validation_mask`).
  validation = splits.scored_validation_mask(held_out, rows.users)
  # A validation user always keeps a train row, so has a row here.
  seen = fit_interactions[rows.users[validation]]
  settings = [dict(zip(free, values))
              for values in itertools.product(*free.values())]
  configs = [dataclasses.replace(config, **setting) for setting in settings]
  started = time.perf_counter()
  fitted = iter(fit_each(fit_interactions, configs) if fit_each is not None
                else (fit(fit_interactions, each) for each in configs))
  points = []
  first_fit_seconds = None
  best, best_metric, best_neighbours = None, None, None
  # Not `zip(settings, fitted)`: zip's reused result tuple would hold the
  # last B while the next one is fitted.
  for setting in settings:
    neighbours = next(fitted)
    if first_fit_seconds is None:
      first_fit_seconds = time.perf_counter() - started
    scores = validation_scores.from_ranks(validation_ranks(
        neighbours, rows.latest_histories[rows.users[validation]], seen,
        rows.items[validation], servable)).as_dict()
    logging.info("%s %s: validation %s on %d rows", family, setting,
                 scores, int(validation.sum()))
    # The first of equals stays the best.
    if best is None or scores[METRIC] > best_metric:
      best, best_metric = setting, scores[METRIC]
      if keep_best_fit:
        best_neighbours = neighbours
    points.append((setting, scores, time.perf_counter() - started))
    # At most the best B so far stays alive while the next one is fitted.
    del neighbours
  curve = learning_curve.LearningCurve(
      family=family, metric=METRIC,
      points=[learning_curve.Point(step=_step(setting),
                                   validation=scores[METRIC], seconds=seconds,
                                   metrics=scores)
              for setting, scores, seconds in points],
      best=_step(best), chosen=best)
  logging.info("%s: chose %s of %s by validation %s", family, best,
               dict(free), METRIC)
  return (dataclasses.replace(config, **best), curve,
          SearchFit(best_neighbours, first_fit_seconds))
