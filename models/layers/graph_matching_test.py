"""Tests for the GMN graph matching layers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.layers import graph_matching

DIM = 4


def _random(shape, seed):
  return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _matched(matching, left, left_mask, right, right_mask):
  tf.keras.utils.set_random_seed(0)
  layer = graph_matching.CrossGraphAttention(DIM, matching=matching)
  return layer, layer(left, left_mask, right, right_mask)


@pytest.mark.parametrize("matching", graph_matching.MATCHING_MODES)
def test_cross_graph_attention_is_permutation_equivariant(matching):
  left, right = _random([2, 5, DIM], 0), _random([2, 3, DIM], 1)
  left_mask = tf.constant([[True] * 5, [True, True, True, False, False]])
  right_mask = tf.constant([[True] * 3, [True, True, False]])
  layer, (left_out, right_out) = _matched(matching, left, left_mask, right,
                                          right_mask)
  left_order, right_order = [3, 0, 4, 2, 1], [2, 0, 1]
  permuted_left, permuted_right = layer(
      tf.gather(left, left_order, axis=1), tf.gather(left_mask, left_order, axis=1),
      tf.gather(right, right_order, axis=1),
      tf.gather(right_mask, right_order, axis=1))
  np.testing.assert_allclose(permuted_left.numpy(),
                             tf.gather(left_out, left_order, axis=1).numpy(),
                             atol=1e-5)
  np.testing.assert_allclose(permuted_right.numpy(),
                             tf.gather(right_out, right_order, axis=1).numpy(),
                             atol=1e-5)


@pytest.mark.parametrize("matching", graph_matching.MATCHING_MODES)
def test_masks_remove_padded_neighbours(matching):
  left, right = _random([1, 3, DIM], 2), _random([1, 2, DIM], 3)
  left_mask, right_mask = tf.constant([[True, True, False]]), tf.constant([[True, False]])
  layer, (left_out, right_out) = _matched(matching, left, left_mask, right,
                                          right_mask)
  # Changing padded entries to anything changes no output.
  noisy_left = tf.concat([left[:, :2], 100.0 + left[:, 2:]], axis=1)
  noisy_right = tf.concat([right[:, :1], -50.0 + right[:, 1:]], axis=1)
  noisy_left_out, noisy_right_out = layer(noisy_left, left_mask, noisy_right,
                                          right_mask)
  np.testing.assert_allclose(noisy_left_out.numpy(), left_out.numpy(), atol=1e-5)
  np.testing.assert_allclose(noisy_right_out.numpy(), right_out.numpy(), atol=1e-5)
  # Padded outputs are zero; real ones equal the layer on the unpadded sets.
  np.testing.assert_array_equal(left_out.numpy()[0, 2], 0.0)
  np.testing.assert_array_equal(right_out.numpy()[0, 1], 0.0)
  unpadded_left, unpadded_right = layer(left[:, :2], left_mask[:, :2],
                                        right[:, :1], right_mask[:, :1])
  np.testing.assert_allclose(unpadded_left.numpy(), left_out.numpy()[:, :2], atol=1e-5)
  np.testing.assert_allclose(unpadded_right.numpy(), right_out.numpy()[:, :1],
                             atol=1e-5)


@pytest.mark.parametrize("matching", graph_matching.MATCHING_MODES)
def test_one_neighbour_per_side_reduces_to_the_difference_message(matching):
  # With one node per side the attention weight is 1 whatever the similarity,
  # so mu = h_video - h_item and the update is h + mlp([h, mu]).
  video, item = _random([3, 1, DIM], 4), _random([3, 1, DIM], 5)
  mask = tf.ones([3, 1], tf.bool)
  layer, (video_out, item_out) = _matched(matching, video, mask, item, mask)
  expected_video = video + layer.left_update(tf.concat([video, video - item], -1))
  expected_item = item + layer.right_update(tf.concat([item, item - video], -1))
  np.testing.assert_allclose(video_out.numpy(), expected_video.numpy(), atol=1e-5)
  np.testing.assert_allclose(item_out.numpy(), expected_item.numpy(), atol=1e-5)


def test_a_node_with_an_empty_other_side_gets_no_message():
  video = _random([1, 2, DIM], 6)
  layer, (video_out, item_out) = _matched(
      graph_matching.MATCHING_SOFTMAX, video, tf.constant([[True, True]]),
      tf.zeros([1, 3, DIM]), tf.zeros([1, 3], tf.bool))
  expected = video + layer.left_update(tf.concat([video, tf.zeros_like(video)], -1))
  np.testing.assert_allclose(video_out.numpy(), expected.numpy(), atol=1e-5)
  np.testing.assert_array_equal(item_out.numpy(), 0.0)


def test_sinkhorn_rows_and_columns_sum_to_one():
  logits = _random([2, 4, 4], 7) * 3.0
  mask = tf.ones([2, 4], tf.bool)
  plan = graph_matching.sinkhorn(logits, mask, mask, num_iterations=50).numpy()
  np.testing.assert_allclose(plan.sum(axis=2), 1.0, atol=1e-5)
  np.testing.assert_allclose(plan.sum(axis=1), 1.0, atol=1e-4)


def test_sinkhorn_with_padding_balances_mass_over_real_entries():
  logits = _random([1, 3, 4], 8)
  row_mask = tf.constant([[True, True, False]])
  column_mask = tf.constant([[True, True, True, False]])
  plan = graph_matching.sinkhorn(logits, row_mask, column_mask,
                                 num_iterations=50).numpy()[0]
  np.testing.assert_array_equal(plan[2], 0.0)
  np.testing.assert_array_equal(plan[:, 3], 0.0)
  np.testing.assert_allclose(plan[:2].sum(axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(plan[:, :3].sum(axis=0), 2.0 / 3.0, atol=1e-4)


def test_masked_softmax_zeroes_masked_and_empty_slices():
  weights = graph_matching.masked_softmax(
      tf.constant([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]),
      tf.constant([[True, True, False], [False, False, False]])).numpy()
  np.testing.assert_allclose(weights[0], [1 / (1 + np.e), np.e / (1 + np.e), 0.0],
                             rtol=1e-5)
  np.testing.assert_array_equal(weights[1], 0.0)


def test_preference_extraction_attends_only_to_real_nodes():
  tf.keras.utils.set_random_seed(0)
  layer = graph_matching.PreferenceExtraction(num_preferences=3, dim=DIM)
  one_node = _random([1, 1, DIM], 9)
  nodes = tf.concat([one_node, 7.0 + _random([1, 2, DIM], 10)], axis=1)
  preferences, mask = layer(nodes, tf.constant([[True, False, False]]))
  # The only real node is every preference's whole weight.
  np.testing.assert_allclose(preferences.numpy()[0],
                             np.repeat(one_node.numpy()[0], 3, axis=0), atol=1e-6)
  np.testing.assert_array_equal(mask.numpy(), [[True, True, True]])
  empty, empty_mask = layer(nodes, tf.zeros([1, 3], tf.bool))
  np.testing.assert_array_equal(empty.numpy(), 0.0)
  np.testing.assert_array_equal(empty_mask.numpy(), [[False] * 3])


def test_gated_set_pooling_is_invariant_to_order_and_padding():
  tf.keras.utils.set_random_seed(0)
  pooling = graph_matching.GatedSetPooling(DIM)
  nodes = _random([1, 3, DIM], 11)
  mask = tf.constant([[True, True, False]])
  pooled = pooling(nodes, mask).numpy()
  reordered = pooling(tf.gather(nodes, [1, 0, 2], axis=1), mask).numpy()
  expected = (pooling.gate(nodes[:, :2]) * pooling.value(nodes[:, :2])).numpy().sum(1)
  np.testing.assert_allclose(reordered, pooled, atol=1e-6)
  np.testing.assert_allclose(pooled, expected, atol=1e-6)


def test_bi_level_aggregator_concatenates_each_pooled_set():
  aggregator = graph_matching.BiLevelAggregator(num_node_sets=2,
                                                num_preference_sets=1, dim=DIM)
  nodes, mask = _random([2, 3, DIM], 12), tf.ones([2, 3], tf.bool)
  output = aggregator([(nodes, mask), (nodes, mask)], [(nodes, mask)])
  assert output.shape == (2, 3 * DIM)
  with pytest.raises(ValueError, match="expected 2 node and 1 preference"):
    aggregator([(nodes, mask)], [(nodes, mask)])
