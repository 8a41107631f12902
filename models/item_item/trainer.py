"""The train function of the item-item families, `ease` and `item_knn`.

It reads the train split's positives, picks the hyperparameters the config
leaves unset on a validation split carved from train
(`models.item_item.tuning`: EASE^R's λ, item-kNN's neighbours and
shrinkage), fits the family's closed form (`models.item_item.fitters`)
on every train row as a binary user x item matrix and saves
`models.item_item.export.ItemNeighboursServingModule`: no gradient steps,
so seconds to minutes, and no ScaNN index (the pipeline pushes it as is).
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

import numpy as np

from data import features
from models import catalogue as catalogue_lib
from models import families
from models.item_item import fitters
from models.item_item import tuning as item_item_tuning
from models import learning_curve
from models import train_inputs

# Examples per batch when reading the train split.
_READ_BATCH_SIZE = 4096


def train(fn_args, tft_output, hparams: Mapping[str, object],
          spec: families.FamilySpec) -> None:
  """The train function of `ease` and `item_knn` (`FamilySpec.train`).

  Picks the hyperparameters the config leaves unset on a validation split
  carved from train, fits the family on every train row and saves the
  family's export.

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
  config, curve = item_item_tuning.search(
      fitter.fit, config, fitter.grids(config), rows,
      catalogue.train_counts > 0, spec.name, fitter.fit_each)
  if curve is not None:
    learning_curve.write(fn_args.model_run_dir, curve)
  logging.info("Hyperparameters: %s", config)
  interactions = rows.interactions(len(catalogue.item_ids))
  started = time.perf_counter()
  neighbours = fitter.fit(interactions, config)
  logging.info("Fitted %s on %d users x %d items (%d positives) in %.1f s",
               type(config).__name__, interactions.shape[0],
               interactions.shape[1], interactions.nnz,
               time.perf_counter() - started)
  families.load(spec.export)(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      neighbours, catalogue).save(fn_args.serving_model_dir)


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
