"""Tests for DIN target attention."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.layers import din_attention


def _constant_weight_layer(weight: float) -> din_attention.DinAttention:
  """A layer whose activation unit scores every position `weight`."""
  layer = din_attention.DinAttention(hidden_units=(3,))
  layer(tf.zeros([1, 2]), tf.zeros([1, 1, 2]), tf.ones([1, 1], tf.bool))
  output_layer = layer.activation_unit.layers[-1]
  output_layer.kernel.assign(tf.zeros_like(output_layer.kernel))
  output_layer.bias.assign([weight])
  return layer


def test_unnormalised_weights_sum_the_real_history():
  layer = _constant_weight_layer(0.5)
  history = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
  pooled = layer(tf.constant([[1.0, 1.0]]), history,
                 tf.constant([[True, True, False]]))
  np.testing.assert_allclose(pooled.numpy(), [[2.0, 3.0]])


def test_empty_history_pools_to_zero():
  layer = din_attention.DinAttention(hidden_units=(4,))
  pooled = layer(tf.ones([2, 3]), tf.ones([2, 5, 3]), tf.zeros([2, 5], tf.bool))
  np.testing.assert_array_equal(pooled.numpy(), np.zeros([2, 3]))


def test_weights_depend_on_the_candidate():
  tf.keras.utils.set_random_seed(0)
  layer = din_attention.DinAttention(hidden_units=(8,))
  history = tf.random.normal([1, 4, 3])
  mask = tf.ones([1, 4], tf.bool)
  first = layer(tf.constant([[1.0, 0.0, 0.0]]), history, mask)
  second = layer(tf.constant([[0.0, 0.0, 1.0]]), history, mask)
  assert not np.allclose(first.numpy(), second.numpy())
