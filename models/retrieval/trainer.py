"""The Trainer shared by the neural retrieval families (`families.RETRIEVAL`).

Every family trains on the per-interaction examples with early stopping
(`models.early_stopping`): each user's newest train example is held out
for validation and never trained on, and the exported model is the best
epoch's (not refitted on the held-out rows). `models.retrieval.sasrec_trainer`
trains SASRec on whole sequences instead, with the same validation, model
and export.

Both run under the `tf.distribute` strategy the custom_config names
(`models.distribution`): the model is built and compiled in its scope, each
worker trains on its shard of the rows, `BackupAndRestore` lets a restarted
job resume after its last epoch (`models.distributed_fit`), and only the
chief writes the learning curve and the export.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from data import splits
from models import catalogue as catalogue_lib
from models import distributed_fit
from models import distribution
from models import early_stopping
from models import families
from models.retrieval import two_tower
from models.retrieval import validation as retrieval_validation
from models import sequence_inputs
from models import train_inputs
from models import training
from transforms import preprocessing


def build_model(fn_args, tft_output, build: Callable, config):
  """A family's model over the Transform vocabularies and the catalogue.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    build: the family's `build_model` (`families.FamilySpec.build_model`).
    config: its config.

  Returns:
    `(model, catalogue)`: the `two_tower.RetrievalModel` and the train
    split's item catalogue.
  """
  vocab = two_tower.VocabularySizes(
      users=preprocessing.vocabulary_size(tft_output, features.USER_VOCAB),
      items=preprocessing.vocabulary_size(tft_output, features.ITEM_VOCAB),
      title_tokens=preprocessing.vocabulary_size(tft_output,
                                                 features.TITLE_TOKEN_VOCAB),
      categories=preprocessing.vocabulary_size(tft_output,
                                               features.CATEGORY_VOCAB),
  )
  catalogue = catalogue_lib.train_split_catalogue(fn_args, tft_output)
  logging.info("Catalogue: %d items, %d train positives", len(catalogue.item_ids),
               int(catalogue.train_counts.sum()))
  return build(vocab, catalogue.candidate_features,
               catalogue.sampling_probability, config), catalogue


def held_out_rows(fn_args, tft_output
                  ) -> tuple[sequence_inputs.SequenceRows, np.ndarray]:
  """Places the train rows in their sequences and holds out the newest.

  Returns:
    `(rows, held_out)`: the train rows in read order and `[n]` True on each
    user's newest row (users with one row keep it).
  """
  rows = train_inputs.sequence_rows(fn_args, tft_output)
  return rows, splits.latest_per_user_mask(rows.users, rows.positions)


def validator(fn_args, tft_output, model, catalogue,
              rows: sequence_inputs.SequenceRows, held_out: np.ndarray
              ) -> retrieval_validation.Validator:
  """The validator of `model`'s towers on the held-out rows it scores
  (`splits.scored_validation_mask`)."""
  scored = splits.scored_validation_mask(held_out, rows.users)
  logging.info("Validation: %d of %d train rows held out, %d scored",
               int(held_out.sum()), len(held_out), int(scored.sum()))
  return retrieval_validation.Validator(
      train_inputs.rows_at(fn_args, tft_output, scored), catalogue,
      model.query_tower, model.candidate_tower)


def validation_split(fn_args, tft_output, model, catalogue
                     ) -> tuple[sequence_inputs.SequenceRows, np.ndarray,
                                retrieval_validation.Validator]:
  """`held_out_rows` and the `validator` of `model` on them."""
  rows, held_out = held_out_rows(fn_args, tft_output)
  return rows, held_out, validator(fn_args, tft_output, model, catalogue,
                                   rows, held_out)


def export(fn_args, tft_output, spec: families.FamilySpec, query_tower,
           candidate_tower, catalogue: catalogue_lib.ItemCatalogue) -> None:
  """Saves the family's serving module of the two towers.

  Every worker of a multi-worker job saves; only the chief's export stays
  (`distribution.write_dir`).
  """
  export_module = families.load(spec.export)
  export_module(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      query_tower, candidate_tower, catalogue,
  ).save(distribution.write_dir(fn_args.serving_model_dir,
                                fn_args.custom_config))
  for directory in (fn_args.serving_model_dir, fn_args.model_run_dir):
    distribution.remove_worker_dir(directory, fn_args.custom_config)


def sharded_batches(fn_args, strategy: tf.distribute.Strategy,
                    dataset_fn, steps_per_epoch: int
                    ) -> distributed_fit.DistributedBatches:
  """The input of a fit under `strategy`, backed up where the Trainer's
  custom_config says (`distribution.backup_dir`).

  Args:
    fn_args: the Trainer's FnArgs.
    strategy: the strategy the model was built under.
    dataset_fn: an input pipeline's repeated per-replica batches.
    steps_per_epoch: the steps of an epoch on every worker.
  """
  return distributed_fit.DistributedBatches(
      strategy, dataset_fn, steps_per_epoch, distribution.backup_dir(fn_args),
      distribution.is_chief(fn_args.custom_config))


def fit(model: tf.keras.Model,
        batches: tf.data.Dataset | distributed_fit.DistributedBatches,
        validator, config, family: str, model_run_dir: str,
        num_items: int) -> None:
  """`early_stopping.fit` as every retrieval Trainer runs it.

  The patience is renewed only by the config's
  `early_stopping_min_improvement`, the learning rate decays on a plateau
  if the config sets `plateau_decay_factor`, and a catalogue of more than
  `two_tower.LAZY_ADAM_MIN_ITEMS` items trains with lazy Adam
  (`two_tower.uses_lazy_adam`).

  Args:
    model: the model to train; it ends with the best epoch's weights.
    batches: one epoch of training batches, without the validation rows;
      under a strategy, their `sharded_batches`.
    validator: a `retrieval_validation.Validator` of the served towers.
    config: the family's `two_tower.TwoTowerConfig` (or a subclass).
    family: the model family, for the learning curve.
    model_run_dir: where the learning curve goes: the Trainer's ModelRun
      directory, a worker's own under a strategy (`distribution.write_dir`).
    num_items: the catalogue's items, padding excluded.
  """
  plateau_decay = (training.PlateauDecay(config.plateau_decay_factor,
                                         config.plateau_decay_after)
                   if config.plateau_decay_factor else None)
  early_stopping.fit(model, batches, validator, config, family, model_run_dir,
                     min_improvement=config.early_stopping_min_improvement,
                     lazy_adam=two_tower.uses_lazy_adam(config, num_items),
                     plateau_decay=plateau_decay)


def train_and_export(fn_args, tft_output, hparams: Mapping[str, object],
                     spec: families.FamilySpec,
                     model_builder: Callable[[tuple[np.ndarray, np.ndarray]],
                                             Callable]) -> None:
  """Trains a retrieval model on the rows not held out and exports it.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's hyperparameter defaults.
    spec: the family: its config class and export module.
    model_builder: the train graph's `edges=(users, items)` (the rows not
      held out for validation) -> the `build_model` to fit; a family that
      reads no graph ignores them.
  """
  # First: a multi-worker strategy must exist before any TensorFlow op.
  strategy = distribution.create(
      distribution.strategy_name(fn_args.custom_config))
  config = train_inputs.seeded_config(fn_args, hparams, spec.config_class())
  rows, held_out = held_out_rows(fn_args, tft_output)
  edges = (rows.users[~held_out], rows.targets[~held_out])
  with distribution.scope(strategy):
    model, catalogue = build_model(fn_args, tft_output, model_builder(edges),
                                   config)
  model_validator = validator(fn_args, tft_output, model, catalogue, rows,
                              held_out)
  if strategy is None:
    train = train_inputs.input_dataset_without(fn_args, tft_output, held_out,
                                               config.batch_size)
  else:
    train = sharded_batches(
        fn_args, strategy,
        lambda context: train_inputs.sharded_input_without(
            fn_args, tft_output, held_out, config.batch_size, context),
        train_inputs.epoch_steps(held_out, config.batch_size))
  fit(model, train, model_validator, config, spec.name,
      distribution.model_run_write_dir(fn_args),
      num_items=len(catalogue.item_ids) - 1)
  export(fn_args, tft_output, spec, *model.serving_towers(), catalogue)


def train_retrieval(fn_args, tft_output, hparams: Mapping[str, object],
                    spec: families.FamilySpec) -> None:
  """Trains a retrieval family's model and exports its serving signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's hyperparameter defaults.
    spec: the family: its config class, `build_model` and export module.
  """
  train_and_export(fn_args, tft_output, hparams, spec,
                   lambda edges: families.load(spec.build_model))
