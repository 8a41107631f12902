"""Known-value tests of the mixture-of-representation layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from models.layers import mixture_of_representation as mor

# Two users, K = 3 interest vectors of size 2.
INTERESTS = tf.constant([
    [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]],
    [[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]],
])
TARGETS = tf.constant([[0.0, 1.0], [-0.8, 0.6]])


def test_large_power_label_aware_attention_equals_max():
  # User 0's closest vector to [0, 1] is k=1; user 1's to [-0.8, 0.6] is k=2.
  expected = np.array([[0.0, 1.0], [-1.0, 0.0]])
  np.testing.assert_allclose(
      mor.label_aware_attention(INTERESTS, TARGETS, 1000.0).numpy(), expected,
      atol=1e-6)
  np.testing.assert_allclose(
      mor.label_aware_attention(INTERESTS, TARGETS, math.inf).numpy(), expected)


def test_zero_power_averages_and_unit_power_is_softmax():
  np.testing.assert_allclose(
      mor.label_aware_attention(INTERESTS, TARGETS, 0.0).numpy(),
      INTERESTS.numpy().mean(axis=1), atol=1e-6)
  affinity = np.einsum("bkd,bd->bk", INTERESTS.numpy(), TARGETS.numpy())
  weights = np.exp(affinity) / np.exp(affinity).sum(axis=1, keepdims=True)
  np.testing.assert_allclose(
      mor.label_aware_attention(INTERESTS, TARGETS, 1.0).numpy(),
      np.einsum("bk,bkd->bd", weights, INTERESTS.numpy()), rtol=1e-5)


def test_max_merge_scores_each_candidate_by_its_best_vector():
  candidates = tf.constant([[1.0, 0.0], [0.0, -1.0]])
  np.testing.assert_allclose(
      mor.max_merge_scores(INTERESTS, candidates).numpy(),
      [[1.0, -0.0], [1.0, -0.0]], atol=1e-6)


def test_label_aware_scores_tend_to_the_max_merge():
  candidates = tf.random.stateless_normal([5, 2], seed=[1, 2])
  np.testing.assert_allclose(
      mor.label_aware_scores(INTERESTS, candidates, 1000.0).numpy(),
      mor.max_merge_scores(INTERESTS, candidates).numpy(), atol=1e-4)
  np.testing.assert_allclose(
      mor.label_aware_scores(INTERESTS, candidates, math.inf).numpy(),
      mor.max_merge_scores(INTERESTS, candidates).numpy())


def test_interest_heads_ignore_padding_and_give_k_vectors():
  tf.keras.utils.set_random_seed(0)
  heads = mor.MultiInterestHeads(num_interests=3, hidden_units=4)
  real = tf.random.normal([1, 2, 4])
  mask = tf.constant([[True, True, False]])
  padded_a = tf.concat([real, tf.zeros([1, 1, 4])], axis=1)
  padded_b = tf.concat([real, tf.fill([1, 1, 4], 7.0)], axis=1)
  out_a = heads(padded_a, mask).numpy()
  assert out_a.shape == (1, 3, 4)
  np.testing.assert_allclose(out_a, heads(padded_b, mask).numpy(), atol=1e-6)


def test_interest_heads_with_one_real_position_return_it():
  heads = mor.MultiInterestHeads(num_interests=2, hidden_units=4)
  sequence = tf.constant([[[1.0, 2.0], [5.0, 5.0]]])
  out = heads(sequence, tf.constant([[True, False]])).numpy()
  np.testing.assert_allclose(out, [[[1.0, 2.0], [1.0, 2.0]]], atol=1e-6)


def test_interest_heads_need_at_least_one_interest():
  with pytest.raises(ValueError, match="num_interests"):
    mor.MultiInterestHeads(num_interests=0, hidden_units=4)
