"""Tests for the item-item families' train functions."""

import types

import numpy as np
import tensorflow as tf

from data import features
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
  np.testing.assert_array_equal(rows.histories,
                                [[0, 0], [0, 0], [0, 0], [2, 3]])
  np.testing.assert_allclose(rows.timestamps, [-1.0, -0.5, 0.1, 0.5])
  # User 1's repeated (1, 2) counts once.
  np.testing.assert_array_equal(rows.interactions(5).toarray(),
                                [[0, 0, 0, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 1, 0, 0, 0]])
