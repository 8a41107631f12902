"""What every Trainer reads from the TFX `FnArgs`: its seed, its config and
its examples."""

from __future__ import annotations

import logging
from typing import Iterator, Mapping

import numpy as np
import tensorflow as tf
from tfx_bsl.public import tfxio

from data import features
from models import distribution
from models import families
from models import sequence_inputs
from models import user_rows


def run_seed(fn_args) -> int:
  """The run's seed from the Trainer's custom_config (0 when absent)."""
  return int((fn_args.custom_config or {}).get(families.SEED_KEY, 0))


def history_length(fn_args) -> int:
  """The most history items a train row keeps, from the custom_config.

  `features.HISTORY_LENGTH` when absent.
  """
  return int((fn_args.custom_config or {}).get(families.HISTORY_LENGTH_KEY,
                                               features.HISTORY_LENGTH))


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


# Per-user train examples read at a time and expanded into rows together.
# A shuffled read mixes the rows of these users (the users themselves are
# shuffled by tfxio), so more users mix better; but their rows, about 5 KB
# each, are all in memory at once: 64 users of 100 positives with 4
# negatives each are some 150 MB.
_USERS_PER_READ = 64


def _holds_user_sequences(tft_output) -> bool:
  """Whether the transformed examples are per user (`models.user_rows`)."""
  # The Trainers' unit tests stand in for the Transform output with objects
  # that have no feature spec; they serve per-row examples.
  feature_spec = getattr(tft_output, "transformed_feature_spec", None)
  return (feature_spec is not None
          and features.SEQUENCE_ITEM_INDICES in feature_spec())


def _read(fn_args, file_pattern, tft_output, batch_size: int,
          shuffle: bool) -> tf.data.Dataset:
  """The examples as tfxio parses them, `batch_size` at a time."""
  return fn_args.data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1,
                                     shuffle=shuffle,
                                     shuffle_seed=run_seed(fn_args)),
      tft_output.transformed_metadata.schema)


def _permuted(rows: dict[str, tf.Tensor], seed: tf.Tensor
              ) -> dict[str, tf.Tensor]:
  """The rows in a random order that `seed` (`[2]` int64) fixes."""
  order = tf.random.experimental.stateless_shuffle(
      tf.range(tf.shape(rows[features.LABEL])[0]), seed)
  return {name: tf.gather(values, order) for name, values in rows.items()}


def input_dataset(fn_args, file_pattern, tft_output, batch_size: int,
                  shuffle: bool) -> tf.data.Dataset:
  """One pass over a split's transformed rows, as dicts of tensors.

  With `features.SEQUENCE_ITEM_INDICES` in the transformed spec, the
  examples are the train split's, one per user: they are read
  `_USERS_PER_READ` at a time and expanded into their per-interaction rows
  (`user_rows.expand_user_rows`, histories capped at `history_length`).
  Eval examples, whose sequence holds only their own item, must not be read
  through here then. Without it, every example is a row.

  Args:
    fn_args: the Trainer's FnArgs (its data accessor and seed).
    file_pattern: the split's files, e.g. `fn_args.train_files`.
    tft_output: the Transform output, whose schema parses the examples.
    batch_size: rows per batch.
    shuffle: shuffle with the run's seed (training), or keep file order.

  Returns:
    The batched dataset.
  """
  if not _holds_user_sequences(tft_output):
    return _read(fn_args, file_pattern, tft_output, batch_size, shuffle)
  cap = history_length(fn_args)
  examples = _read(fn_args, file_pattern, tft_output, _USERS_PER_READ, shuffle)
  if shuffle:
    # One key per read, drawn anew each epoch, deterministic from the seed:
    # tfxio shuffles users, the key mixes the rows of a read's users.
    keys = tf.data.Dataset.random(seed=run_seed(fn_args),
                                  rerandomize_each_iteration=True).batch(2)
    rows = tf.data.Dataset.zip((examples, keys)).map(
        lambda batch, key: _permuted(
            user_rows.expand_user_rows(batch, cap), key))
  else:
    rows = examples.map(lambda batch: user_rows.expand_user_rows(batch, cap))
  # One read at a time, so that only one read's rows are in memory; on one
  # core the expansion makes several hundred thousand rows a second.
  return rows.rebatch(batch_size)


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


def sequence_rows(fn_args, tft_output) -> sequence_inputs.SequenceRows:
  """The train split's positives placed in their users' sequences, in the
  order `ordered_batches` reads them.

  Per-user examples are read as they are stored, without expanding them
  (`sequence_inputs.read_user_sequences`); a split of per-interaction rows,
  each user's together and oldest first, is placed row by row. The split
  must hold positives only (a retrieval family's).
  """
  if not _holds_user_sequences(tft_output):
    return sequence_inputs.read_sequence_rows(
        ordered_batches(fn_args, tft_output))
  return sequence_inputs.read_user_sequences(
      _read(fn_args, fn_args.train_files, tft_output, _USERS_PER_READ,
            shuffle=False))


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


def _rows_without(fn_args, tft_output, excluded: np.ndarray
                  ) -> tf.data.Dataset:
  """The train split's rows, one at a time in read order, minus `excluded`."""
  keep = tf.constant(~excluded)
  rows = input_dataset(fn_args, fn_args.train_files, tft_output, _READ_BATCH,
                       shuffle=False).unbatch().enumerate()
  return (rows.filter(lambda index, row: keep[index])
          .map(lambda index, row: row))


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
  return (_rows_without(fn_args, tft_output, excluded)
          .shuffle(_SHUFFLE_BUFFER, seed=run_seed(fn_args))
          .batch(batch_size)
          .prefetch(tf.data.AUTOTUNE))


def sharded_input_without(fn_args, tft_output, excluded: np.ndarray,
                          global_batch: int,
                          context: tf.distribute.InputContext
                          ) -> tf.data.Dataset:
  """One input pipeline's share of `input_dataset_without`, under a
  `tf.distribute` strategy (`distribute_datasets_from_function`).

  Pipeline `i` of `n` reads the kept rows `i, i + n, ...` in read order,
  shuffles them with a seed of its own (`distribution.pipeline_seed`), anew
  every pass, and batches them `global_batch / replicas` at a time, passes
  following one another without end: the fit sets the steps of an epoch
  (`epoch_steps`), equal on every worker, and every replica's batch is full.

  Args:
    fn_args: the Trainer's FnArgs (its data accessor and seed).
    tft_output: the Transform output.
    excluded: `[n]` over the split's read order (`ordered_batches`).
    global_batch: examples per step over all replicas.
    context: which pipeline this is, of how many, and the replicas.

  Returns:
    The repeated per-replica batches.
  """
  return (_rows_without(fn_args, tft_output, excluded)
          .shard(context.num_input_pipelines, context.input_pipeline_id)
          .shuffle(_SHUFFLE_BUFFER,
                   seed=distribution.pipeline_seed(run_seed(fn_args), context))
          .repeat()
          .batch(context.get_per_replica_batch_size(global_batch),
                 drop_remainder=True)
          .prefetch(tf.data.AUTOTUNE))


def epoch_steps(excluded: np.ndarray, global_batch: int) -> int:
  """The steps of a sharded epoch: every kept row about once (at least 1)."""
  return max(1, int(np.sum(~excluded)) // global_batch)
