"""Tests for the causal self-attention block."""

import numpy as np
import pytest
import tensorflow as tf

from models.layers import attention


def test_a_position_never_sees_later_positions():
  tf.keras.utils.set_random_seed(0)
  block = attention.CausalSelfAttentionBlock(num_heads=2, dim=8)
  sequence = tf.random.normal([1, 5, 8])
  mask = tf.constant([[True] * 5])
  changed_future = tf.concat([sequence[:, :3], tf.random.normal([1, 2, 8])], 1)
  before = block(sequence, mask).numpy()
  after = block(changed_future, mask).numpy()
  np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-5)
  assert not np.allclose(before[:, 3:], after[:, 3:])


def test_padding_keys_are_ignored():
  tf.keras.utils.set_random_seed(0)
  block = attention.CausalSelfAttentionBlock(num_heads=1, dim=4)
  real = tf.random.normal([1, 2, 4])
  padded_a = tf.concat([real, tf.zeros([1, 2, 4])], axis=1)
  padded_b = tf.concat([real, tf.ones([1, 2, 4]) * 9.0], axis=1)
  mask = tf.constant([[True, True, False, False]])
  np.testing.assert_allclose(block(padded_a, mask).numpy()[:, :2],
                             block(padded_b, mask).numpy()[:, :2], atol=1e-5)


def test_gather_last_position_uses_lengths_and_zeroes_empty_rows():
  sequence = tf.reshape(tf.range(2 * 3 * 2, dtype=tf.float32), [2, 3, 2])
  last = attention.gather_last_position(sequence, tf.constant([2, 0]))
  np.testing.assert_allclose(last.numpy(), [[2.0, 3.0], [0.0, 0.0]])


def test_dim_must_divide_into_heads():
  with pytest.raises(ValueError, match="divisible"):
    attention.CausalSelfAttentionBlock(num_heads=3, dim=8)


def test_a_non_causal_call_sees_later_positions_with_the_same_weights():
  tf.keras.utils.set_random_seed(0)
  encoder = attention.CausalSequenceEncoder(max_length=5, dim=8, num_blocks=1,
                                            num_heads=2, dropout=0.0)
  sequence = tf.random.normal([1, 5, 8])
  mask = tf.constant([[True] * 5])
  changed_future = tf.concat([sequence[:, :3], tf.random.normal([1, 2, 8])], 1)
  causal = encoder(sequence, mask).numpy()
  before = encoder(sequence, mask, causal=False).numpy()
  after = encoder(changed_future, mask, causal=False).numpy()
  assert not np.allclose(before[:, :3], after[:, :3])
  # The last position sees everything either way.
  np.testing.assert_allclose(before[:, -1], causal[:, -1], atol=1e-5)
