"""Train functions of the item-item families, `ease` and `item_knn`.

Each reads the train split's positives, picks the hyperparameters its
config leaves unset on a validation split carved from train
(`models.item_item_tuning`: EASE^R's λ, item-kNN's neighbours and
shrinkage), fits the family's closed form (`models.ease`, `models.item_knn`)
on every train row as a binary user x item matrix and saves
`models.item_item_export.ItemNeighboursServingModule`: no gradient steps,
so seconds to minutes, and no ScaNN index (the pipeline pushes it as is).
"""

from __future__ import annotations

import logging
import time
from typing import Mapping, Sequence

import numpy as np

from data import features
from models import ease
from models import item_item_export
from models import item_item_tuning
from models import item_knn
from models import learning_curve
from models import retrieval_export
from models import train_inputs

# Examples per batch when reading the train split.
_READ_BATCH_SIZE = 4096


def train_ease(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """The `ease` family's train function (`families.FamilySpec.train`)."""
  config = ease.EaseConfig.from_dict(hparams)
  _train(fn_args, tft_output, "ease", config, ease.fit_ease,
         {"l2": config.l2_grid}, fit_each=ease.fit_ease_each)


def train_item_knn(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """The `item_knn` family's train function (`families.FamilySpec.train`)."""
  config = item_knn.ItemKnnConfig.from_dict(hparams)
  _train(fn_args, tft_output, "item_knn", config, item_knn.fit_item_knn,
         {"neighbours": config.neighbours_grid,
          "shrinkage": config.shrinkage_grid})


def train_rows(fn_args, tft_output) -> item_item_tuning.TrainRows:
  """The train split's positives: user, item, history and time of each.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
  """
  columns = {name: [] for name in (features.USER_INDEX, features.ITEM_INDEX,
                                   features.HISTORY_ITEM_INDICES,
                                   features.TIMESTAMP_Z)}
  for batch in train_inputs.input_dataset(fn_args, fn_args.train_files,
                                          tft_output, _READ_BATCH_SIZE,
                                          shuffle=False):
    size = len(batch[features.ITEM_INDEX])
    positive = np.ones(size, bool)
    if features.LABEL in batch:
      positive = np.reshape(batch[features.LABEL].numpy(), [-1]) > 0.5
    for name, values in columns.items():
      values.append(np.reshape(batch[name].numpy(), [size, -1])[positive])
  users, items, histories, timestamps = (
      np.concatenate(values) for values in columns.values())
  # Transform's z-scored time orders the rows as their timestamps do.
  return item_item_tuning.TrainRows(users=users[:, 0], items=items[:, 0],
                                    histories=histories,
                                    timestamps=timestamps[:, 0])


def _train(fn_args, tft_output, family: str, config, fit: item_item_tuning.Fit,
           grids: Mapping[str, Sequence],
           fit_each: item_item_tuning.FitEach | None = None) -> None:
  """Picks the unset hyperparameters, fits and saves the serving module.

  The hyperparameters `config` leaves None are searched over `grids` on a
  validation split carved from train (`models.item_item_tuning.search`,
  whose curve goes to `<model_run dir>/learning_curve.json`; `fit_each`
  fits its settings), and the chosen setting is then fitted on every train
  row.
  """
  catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output)
  rows = train_rows(fn_args, tft_output)
  config, curve = item_item_tuning.search(
      fit, config, grids, rows, catalogue.train_counts > 0, family, fit_each)
  if curve is not None:
    learning_curve.write(fn_args.model_run_dir, curve)
  logging.info("Hyperparameters: %s", config)
  interactions = rows.interactions(len(catalogue.item_ids))
  started = time.perf_counter()
  neighbours = fit(interactions, config)
  logging.info("Fitted %s on %d users x %d items (%d positives) in %.1f s",
               type(config).__name__, interactions.shape[0],
               interactions.shape[1], interactions.nnz,
               time.perf_counter() - started)
  item_item_export.ItemNeighboursServingModule(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      neighbours, catalogue).save(fn_args.serving_model_dir)
