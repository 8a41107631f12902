"""Tests for the dual graph's tensor half."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from transforms import dual_graph


def test_drop_target_pads_the_predicted_video():
  neighbours = tf.constant([[1, 2, 3], [2, 0, 0]], tf.int64)
  np.testing.assert_array_equal(
      dual_graph.drop_target(neighbours, tf.constant([2, 5], tf.int64)).numpy(),
      [[1, 0, 3], [2, 0, 0]])


def test_split_history_compacts_each_side_in_time_order():
  history = tf.sparse.from_dense(tf.constant([[4, 1, 5, 2], [3, 0, 0, 0]], tf.int64))
  is_video = tf.SparseTensor(history.indices,
                             tf.constant([False, True, False, True, True]),
                             history.dense_shape)
  videos, items = dual_graph.split_history(history, is_video, length=3)
  np.testing.assert_array_equal(videos.numpy(), [[1, 2, 0], [3, 0, 0]])
  np.testing.assert_array_equal(items.numpy(), [[4, 5, 0], [0, 0, 0]])
