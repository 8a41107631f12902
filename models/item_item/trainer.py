"""The train function of the item-item families, `ease` and `item_knn`.

It reads the train split's positives, picks the hyperparameters the config
leaves unset on a validation split carved from train
(`models.item_item.tuning`: EASE^R's λ, item-kNN's neighbours and
shrinkage), fits the family's closed form (`models.item_item.fitters`)
on every train row as a binary user x item matrix and saves
`models.item_item.export.ItemNeighboursServingModule`: no gradient steps,
so seconds to minutes, and no ScaNN index (the pipeline pushes it as is).

The refit on every train row is skipped when the fit's time budget
(`baselines.fit_timeout_s`, whose deadline the contained Trainer passes in
`families.FIT_DEADLINE_KEY`) cannot hold it: the search's fit of the chosen
setting, on every train row but each user's newest, is exported instead,
and the learning curve's `chosen` says which rows the model was fitted on.
The curve, with each setting's seconds, is written before any refit, so a
refit stopped at the budget still leaves the search's record.
At 10M interactions x 895k items EASE^R's search took 45 minutes and its
refit was stopped at the hour (benchmarks/HISTORY.md, "Run 7"), which cost
the run its EASE^R baseline.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Mapping

import numpy as np

from data import features
from models import catalogue as catalogue_lib
from models import families
from models.item_item import fitters
from models.item_item import neighbours as item_neighbours
from models.item_item import tuning as item_item_tuning
from models import learning_curve
from models import train_inputs

# Examples per batch when reading the train split.
_READ_BATCH_SIZE = 4096
# The refit is predicted to take this many times the search's first fit:
# it reads the validation rows too, and the export follows it.
_REFIT_SAFETY_FACTOR = 1.5
FITTED_ON_EVERY_ROW = "every train row"


def refit_or_reason(first_fit_seconds: float,
                    deadline_unix_s: float | None,
                    now_unix_s: float) -> str | None:
  """None if a refit fits the time left; else why the search's fit is kept.

  Args:
    first_fit_seconds: how long the search's first fit took.
    deadline_unix_s: when the fit process is stopped; None: never.
    now_unix_s: the time now.
  """
  if deadline_unix_s is None:
    return None
  needed_s = _REFIT_SAFETY_FACTOR * first_fit_seconds
  left_s = deadline_unix_s - now_unix_s
  if needed_s <= left_s:
    return None
  return (f"the search's fit, on every train row but each user's newest: a "
          f"refit on every row needs about {needed_s:,.0f} s "
          f"({_REFIT_SAFETY_FACTOR:g}x the search's first fit) and "
          f"{max(left_s, 0):,.0f} s of baselines.fit_timeout_s were left")


def train(fn_args, tft_output, hparams: Mapping[str, object],
          spec: families.FamilySpec) -> None:
  """The train function of `ease` and `item_knn` (`FamilySpec.train`).

  Picks the hyperparameters the config leaves unset on a validation split
  carved from train, fits the family on every train row (or keeps the
  search's fit when the time budget cannot hold a refit: `refit_or_reason`)
  and saves the family's export. The search's curve is written before the
  refit, so a refit stopped at the budget still leaves it.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's config defaults.
    spec: the family; its fitter is `fitters.FITTERS[spec.name]`.
  """
  fitter = fitters.FITTERS[spec.name]
  config = fitter.config_class.from_dict(hparams)
  catalogue = catalogue_lib.train_split_catalogue(fn_args, tft_output)
  rows = train_rows(fn_args, tft_output)
  choice = search_and_choose(
      fitter, config, rows, catalogue.train_counts > 0, spec.name,
      fn_args.custom_config.get(families.FIT_DEADLINE_KEY))
  if choice.curve is not None:
    learning_curve.write(fn_args.model_run_dir, choice.curve)
  neighbours = choice.search_fit
  if neighbours is None:
    neighbours = fit_every_row(fitter, choice.config, rows,
                               len(catalogue.item_ids))
  families.load(spec.export)(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      neighbours, catalogue).save(fn_args.serving_model_dir)


@dataclasses.dataclass(frozen=True)
class Choice:
  """A search's outcome (`search_and_choose`).

  Attributes:
    config: the config with every searched hyperparameter set.
    curve: the search's curve, its `chosen` saying which rows B is fitted
      on; None when nothing was searched.
    search_fit: the search's B, to export as it is; None: refit `config` on
      every train row.
  """
  config: Any
  curve: learning_curve.LearningCurve | None
  search_fit: item_neighbours.ItemNeighbours | None


def search_and_choose(
    fitter: fitters.Fitter, config, rows: item_item_tuning.TrainRows,
    servable: np.ndarray, family: str, deadline_unix_s: float | None
) -> Choice:
  """Searches the settings `config` leaves unset, and chooses B's rows.

  Searches with `item_item_tuning.search`, then chooses a refit of the best
  setting on every train row, unless `deadline_unix_s` cannot hold it
  (`refit_or_reason`): then the search's fit is the one to export.

  Args:
    fitter: the family's fitter.
    config: its config; hyperparameters left None are searched.
    rows: the train split's positives.
    servable: `[num_items]` items that can be recommended.
    family: the family's name.
    deadline_unix_s: when the fit process is stopped; None: never.
  """
  config, curve, search_fit = item_item_tuning.search(
      fitter.fit, config, fitter.grids(config), rows, servable, family,
      fitter.fit_each, keep_best_fit=deadline_unix_s is not None)
  logging.info("Hyperparameters: %s", config)
  skip_reason = None if search_fit is None else refit_or_reason(
      search_fit.first_fit_seconds, deadline_unix_s, time.time())
  if skip_reason is not None:
    logging.warning("%s: not refitted on every train row; exporting %s",
                    family, skip_reason)
  if curve is not None:
    curve = dataclasses.replace(curve, chosen={
        **curve.chosen, "fitted_on": skip_reason or FITTED_ON_EVERY_ROW})
  # A refit frees the search's B before it builds another.
  return Choice(config, curve,
                search_fit.neighbours if skip_reason is not None else None)


def fit_every_row(fitter: fitters.Fitter, config,
                  rows: item_item_tuning.TrainRows,
                  num_items: int) -> item_neighbours.ItemNeighbours:
  """Fits `config` on every train row."""
  interactions = rows.interactions(num_items)
  started = time.perf_counter()
  neighbours = fitter.fit(interactions, config)
  logging.info("Fitted %s on %d users x %d items (%d positives) in %.1f s",
               type(config).__name__, interactions.shape[0],
               interactions.shape[1], interactions.nnz,
               time.perf_counter() - started)
  return neighbours


def train_rows(fn_args, tft_output) -> item_item_tuning.TrainRows:
  """The train split's positives: user, item and time of each, and each
  user's newest history (`TrainRows.latest_histories`), read in one pass.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
  """
  columns = {name: [] for name in (features.USER_INDEX, features.ITEM_INDEX,
                                   features.TIMESTAMP_Z)}
  latest = _LatestHistories()
  for batch in train_inputs.input_dataset(fn_args, fn_args.train_files,
                                          tft_output, _READ_BATCH_SIZE,
                                          shuffle=False):
    size = len(batch[features.ITEM_INDEX])
    positive = np.ones(size, bool)
    if features.LABEL in batch:
      positive = np.reshape(batch[features.LABEL].numpy(), [-1]) > 0.5
    values = {name: np.reshape(batch[name].numpy(), [size, -1])[positive]
              for name in (*columns, features.HISTORY_ITEM_INDICES)}
    for name, kept in columns.items():
      kept.append(values[name][:, 0])
    latest.update(values[features.USER_INDEX][:, 0],
                  values[features.TIMESTAMP_Z][:, 0],
                  values[features.HISTORY_ITEM_INDICES])
  users, items, timestamps = (np.concatenate(values) if values else
                              np.zeros(0) for values in columns.values())
  # Transform's z-scored time orders the rows as their timestamps do.
  return item_item_tuning.TrainRows(users=users, items=items,
                                    timestamps=timestamps,
                                    latest_histories=latest.histories)


class _LatestHistories:
  """Each user's history at their newest row so far, rows read in order.

  A later row replaces an equal time, as `splits.latest_per_user_mask`
  marks the last of equals. Memory: one history per user, not per row.
  """

  def __init__(self):
    self._times = np.zeros(0)
    self._histories = np.zeros((0, 0), np.int32)
    self._users = 0

  @property
  def histories(self) -> np.ndarray:
    """`[users, length]`: row u is user u's history at their newest row."""
    return self._histories[:self._users]

  def update(self, users: np.ndarray, times: np.ndarray,
             histories: np.ndarray) -> None:
    """Takes the next rows: `[n]` users and times, `[n, length]` histories."""
    if not len(users):
      return
    self._users = max(self._users, int(users.max()) + 1)
    if self._users > len(self._times):
      grown = max(self._users, 2 * len(self._times))
      self._times = np.concatenate(
          [self._times, np.full(grown - len(self._times), -np.inf)])
      self._histories = np.concatenate([
          self._histories.reshape(len(self._histories), histories.shape[1]),
          np.zeros((grown - len(self._histories), histories.shape[1]),
                   np.int32)])
    # Each user's last row among their newest in this batch, then kept
    # where it is not older than the one kept so far.
    order = np.lexsort((np.arange(len(users)), times, users))
    last = order[np.r_[users[order][1:] != users[order][:-1], True]]
    newer = last[times[last] >= self._times[users[last]]]
    self._times[users[newer]] = times[newer]
    self._histories[users[newer]] = histories[newer]
