"""What every Trainer reads from the TFX `FnArgs`: its seed, its config and
its examples."""

from __future__ import annotations

import logging
from typing import Iterator, Mapping

import numpy as np
import tensorflow as tf
from tfx_bsl.public import tfxio

from models import families


def run_seed(fn_args) -> int:
  """The run's seed from the Trainer's custom_config (0 when absent)."""
  return int((fn_args.custom_config or {}).get(families.SEED_KEY, 0))


def seeded_config(fn_args, hparams: Mapping[str, object], config_class):
  """A Trainer's config from `hparams`, logged; TF seeded with the run seed.

  Seeding here, before any model is built, makes a Trainer's weights,
  sampling and dropout a function of the run seed (`run_seed`).

  Args:
    fn_args: the Trainer's FnArgs.
    hparams: overrides of the config's defaults.
    config_class: the family's `hparams.HParams` dataclass.

  Returns:
    The config.
  """
  config = config_class.from_dict(hparams)
  logging.info("%s: %s", config_class.__name__, config)
  tf.keras.utils.set_random_seed(run_seed(fn_args))
  return config


def input_dataset(fn_args, file_pattern, tft_output, batch_size: int,
                  shuffle: bool) -> tf.data.Dataset:
  """One pass over transformed examples, as dicts of tensors.

  Args:
    fn_args: the Trainer's FnArgs (its data accessor and seed).
    file_pattern: the split's files, e.g. `fn_args.train_files`.
    tft_output: the Transform output, whose schema parses the examples.
    batch_size: examples per batch.
    shuffle: shuffle with the run's seed (training), or keep file order.

  Returns:
    The batched dataset.
  """
  return fn_args.data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1,
                                     shuffle=shuffle,
                                     shuffle_seed=run_seed(fn_args)),
      tft_output.transformed_metadata.schema)


# Rows read ahead and shuffled, as the shuffled `input_dataset` does.
_SHUFFLE_BUFFER = 10_000
# Rows per batch when a split is read in order into numpy.
_READ_BATCH = 4096


def ordered_batches(fn_args, tft_output
                    ) -> Iterator[dict[str, np.ndarray]]:
  """The train split in its (deterministic) read order, as numpy batches.

  Every pass reads the rows in the same order, so a row's place in it
  identifies the row (`rows_at`, `input_dataset_without`).
  """
  for batch in input_dataset(fn_args, fn_args.train_files, tft_output,
                             _READ_BATCH, shuffle=False):
    yield {name: values.numpy() for name, values in batch.items()}


def rows_at(fn_args, tft_output, selected: np.ndarray) -> dict[str, np.ndarray]:
  """The train rows `selected` marks, `[n]` over the read order, in memory."""
  kept: dict[str, list[np.ndarray]] = {}
  start = 0
  for batch in ordered_batches(fn_args, tft_output):
    size = len(next(iter(batch.values())))
    chosen = selected[start:start + size]
    start += size
    for name, values in batch.items():
      kept.setdefault(name, []).append(values[chosen])
  return {name: np.concatenate(values) for name, values in kept.items()}


def input_dataset_without(fn_args, tft_output, excluded: np.ndarray,
                          batch_size: int) -> tf.data.Dataset:
  """One shuffled pass over the train split minus the rows `excluded` marks.

  Args:
    fn_args: the Trainer's FnArgs (its data accessor and seed).
    tft_output: the Transform output.
    excluded: `[n]` over the split's read order (`ordered_batches`).
    batch_size: examples per batch.

  Returns:
    The batched dataset, reshuffled every epoch with the run's seed.
  """
  keep = tf.constant(~excluded)
  rows = input_dataset(fn_args, fn_args.train_files, tft_output, _READ_BATCH,
                       shuffle=False).unbatch().enumerate()
  return (rows.filter(lambda index, row: keep[index])
          .map(lambda index, row: row)
          .shuffle(_SHUFFLE_BUFFER, seed=run_seed(fn_args))
          .batch(batch_size)
          .prefetch(tf.data.AUTOTUNE))
