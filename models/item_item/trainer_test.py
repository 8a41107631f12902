"""Tests for the item-item families' train functions."""

import types

import numpy as np
import tensorflow as tf

from data import features
from data import splits
from models.item_item import trainer as item_item_trainer


def _fn_args(batches):
  """FnArgs whose data accessor serves `batches` whatever it is asked."""
  def tf_dataset_factory(file_pattern, options, schema):
    del file_pattern, options, schema
    return tf.data.Dataset.from_tensor_slices(batches)
  return types.SimpleNamespace(
      train_files=["unused"], custom_config={},
      data_accessor=types.SimpleNamespace(
          tf_dataset_factory=tf_dataset_factory))


def test_train_rows_keep_positives_with_their_history_and_time():
  batches = {
      features.USER_INDEX: np.array([[1, 1, 2], [3, 1, 1]]),
      features.ITEM_INDEX: np.array([[2, 3, 2], [1, 2, 4]]),
      features.HISTORY_ITEM_INDICES: np.array([[[0, 0], [2, 0], [0, 0]],
                                               [[0, 0], [2, 3], [2, 2]]]),
      features.TIMESTAMP_Z: np.array([[-1.0, 0.0, -0.5], [0.1, 0.5, 0.9]],
                                     np.float32),
      features.LABEL: np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
  }
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))
  rows = item_item_trainer.train_rows(_fn_args(batches), tft_output)
  # (1, 3) and (1, 4) are negatives.
  np.testing.assert_array_equal(rows.users, [1, 2, 3, 1])
  np.testing.assert_array_equal(rows.items, [2, 2, 1, 2])
  np.testing.assert_allclose(rows.timestamps, [-1.0, -0.5, 0.1, 0.5])
  # Each user's newest positive's history, user 0 (no row) padding.
  np.testing.assert_array_equal(rows.latest_histories,
                                [[0, 0], [2, 3], [0, 0], [0, 0]])
  # User 1's repeated (1, 2) counts once.
  np.testing.assert_array_equal(rows.interactions(5).toarray(),
                                [[0, 0, 0, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 1, 0, 0, 0]])


def test_latest_histories_are_those_of_the_rows_validation_holds_out():
  # Many batches of users with ties in time: the history kept per user is
  # that of the row `latest_per_user_mask` marks.
  rng = np.random.default_rng(0)
  size, batch = 600, 64
  users = rng.integers(0, 40, size)
  times = rng.integers(0, 5, size).astype(np.float32)
  histories = np.stack([np.arange(size), np.arange(size) + 1], axis=1)
  padded = -(-size // batch) * batch

  def pad(values, fill):
    # The last batch is filled up with negatives, which are dropped.
    return np.concatenate([values, np.full((padded - size,) + values.shape[1:],
                                           fill, values.dtype)])

  label = pad(np.ones(size, np.float32), 0.0)
  batches = {
      features.USER_INDEX: pad(users, 0).reshape(-1, batch),
      features.ITEM_INDEX: pad(np.ones(size, np.int64), 1).reshape(-1, batch),
      features.HISTORY_ITEM_INDICES: pad(histories, 0).reshape(-1, batch, 2),
      features.TIMESTAMP_Z: pad(times, 0.0).reshape(-1, batch),
      features.LABEL: label.reshape(-1, batch)}
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))
  rows = item_item_trainer.train_rows(_fn_args(batches), tft_output)
  validation = splits.latest_per_user_mask(rows.users, rows.timestamps,
                                           min_rows=1)
  np.testing.assert_array_equal(
      rows.latest_histories[rows.users[validation]], histories[validation])
