"""Train functions of the item-item families, `ease` and `item_knn`.

Each reads the train split's positives as a binary user x item matrix,
fits the family's closed form (`models.ease`, `models.item_knn`) and saves
`models.item_item_export.ItemNeighboursServingModule`: no gradient steps,
so seconds to minutes, and no ScaNN index (the pipeline pushes it as is).
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Mapping

import numpy as np
from scipy import sparse

from data import features
from models import ease
from models import item_item_export
from models import item_knn
from models import item_neighbours
from models import retrieval_export
from models import train_inputs

# Examples per batch when reading the train split.
_READ_BATCH_SIZE = 4096

Fit = Callable[[sparse.spmatrix, object], item_neighbours.ItemNeighbours]


def train_ease(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """The `ease` family's train function (`families.FamilySpec.train`)."""
  _train(fn_args, tft_output, ease.EaseConfig.from_dict(hparams),
         ease.fit_ease)


def train_item_knn(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """The `item_knn` family's train function (`families.FamilySpec.train`)."""
  _train(fn_args, tft_output, item_knn.ItemKnnConfig.from_dict(hparams),
         item_knn.fit_item_knn)


def train_interactions(fn_args, tft_output,
                       num_items: int) -> sparse.csr_matrix:
  """The train split's positives as a binary `[users, num_items]` matrix.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    num_items: item indices, padding and OOV included.
  """
  users, items = [], []
  for batch in train_inputs.input_dataset(fn_args, fn_args.train_files,
                                          tft_output, _READ_BATCH_SIZE,
                                          shuffle=False):
    positive = np.ones(len(batch[features.ITEM_INDEX]), bool)
    if features.LABEL in batch:
      positive = np.reshape(batch[features.LABEL].numpy(), [-1]) > 0.5
    users.append(np.reshape(batch[features.USER_INDEX].numpy(), [-1])[positive])
    items.append(np.reshape(batch[features.ITEM_INDEX].numpy(), [-1])[positive])
  return item_neighbours.interaction_matrix(np.concatenate(users),
                                            np.concatenate(items), num_items)


def _train(fn_args, tft_output, config, fit: Fit) -> None:
  """Fits `fit(interactions, config)` and saves its serving module."""
  logging.info("Hyperparameters: %s", config)
  catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output)
  interactions = train_interactions(fn_args, tft_output,
                                    len(catalogue.item_ids))
  started = time.perf_counter()
  neighbours = fit(interactions, config)
  logging.info("Fitted %s on %d users x %d items (%d positives) in %.1f s",
               type(config).__name__, interactions.shape[0],
               interactions.shape[1], interactions.nnz,
               time.perf_counter() - started)
  item_item_export.ItemNeighboursServingModule(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      neighbours, catalogue).save(fn_args.serving_model_dir)
