"""Tests for the item-item families' train functions."""

import types

import numpy as np
import tensorflow as tf

from data import features
from models import item_item_trainer


def _fn_args(batches):
  """FnArgs whose data accessor serves `batches` whatever it is asked."""
  def tf_dataset_factory(file_pattern, options, schema):
    del file_pattern, options, schema
    return tf.data.Dataset.from_tensor_slices(batches)
  return types.SimpleNamespace(
      train_files=["unused"], custom_config={},
      data_accessor=types.SimpleNamespace(
          tf_dataset_factory=tf_dataset_factory))


def test_train_interactions_keep_positives_only():
  batches = {
      features.USER_INDEX: np.array([[1, 1, 2], [3, 1, 1]]),
      features.ITEM_INDEX: np.array([[2, 3, 2], [1, 2, 4]]),
      features.LABEL: np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
  }
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))
  matrix = item_item_trainer.train_interactions(_fn_args(batches), tft_output,
                                                num_items=5)
  # User 1's (1, 2) repeats and (1, 3), (1, 4) are negatives.
  np.testing.assert_array_equal(matrix.toarray(), [[0, 0, 0, 0, 0],
                                                   [0, 0, 1, 0, 0],
                                                   [0, 0, 1, 0, 0],
                                                   [0, 1, 0, 0, 0]])
