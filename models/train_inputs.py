"""What every Trainer reads from the TFX `FnArgs`: its seed, its config and
its examples."""

from __future__ import annotations

import logging
from typing import Mapping

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
