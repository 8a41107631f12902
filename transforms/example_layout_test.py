"""Tests for where the values of per-user examples sit."""

import numpy as np
import tensorflow as tf

from transforms import example_layout


def _sparse(rows, dtype=tf.int64):
  """`[len(rows), None]` sparse tensor of per-row lists."""
  return tf.RaggedTensor.from_row_lengths(
      tf.constant([value for row in rows for value in row], dtype),
      [len(row) for row in rows]).to_sparse()


def test_newest_keeps_each_rows_last_values_left_aligned():
  newest = example_layout.newest(_sparse([[1, 2, 3, 4], [5], []]), length=2)
  np.testing.assert_array_equal(tf.sparse.to_dense(newest).numpy(),
                                [[3, 4], [5, 0], [0, 0]])


def test_positives_are_the_own_history_positions_then_the_item():
  # Example 0 holds two positives of its own before its item, example 1
  # (an eval row) none; example 1's history has no own features.
  positives = example_layout.Positives(tf.constant([2, 0], tf.int64))
  own = positives.own(_sparse([[10, 11], [12]]))
  np.testing.assert_array_equal(own.numpy(), [10, 11])
  values = positives.values(own, tf.constant([20, 21], tf.int64))
  np.testing.assert_array_equal(values.numpy(), [10, 11, 20, 21])
  # Two values per positive, laid out position by position.
  feature = positives.layout.feature(tf.stack([values, -values], axis=1))
  np.testing.assert_array_equal(tf.sparse.to_dense(feature).numpy(), [
      [10, -10, 11, -11, 20, -20],
      [21, -21, 0, 0, 0, 0]])


def test_each_negative_takes_its_positives_values():
  # Two negatives per positive of example 0 (three positives), none for
  # example 1's one positive.
  positives = example_layout.Positives(tf.constant([2, 0], tf.int64))
  negatives = example_layout.Negatives(
      _sparse([[1, 2, 3, 4, 5, 6], []]), positives)
  np.testing.assert_array_equal(negatives.per_positive.numpy(), [2, 0])
  np.testing.assert_array_equal(
      negatives.of_positives(tf.constant([100, 101, 102, 103])).numpy(),
      [100, 100, 101, 101, 102, 102])
