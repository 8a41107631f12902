"""Tests for multi-head target attention with top-K selection."""

import numpy as np
import pytest
import tensorflow as tf

from models.layers import target_attention


def _layer(top_k=None, num_heads=2, dim=4, rerank_factor=1):
  tf.keras.utils.set_random_seed(0)
  return target_attention.MultiHeadTargetAttention(
      num_heads, dim, top_k=top_k, rerank_factor=rerank_factor)


def test_causal_history_mask_known_values():
  mask = target_attention.causal_history_mask(
      tf.constant([[True, True, False]]))
  np.testing.assert_array_equal(mask.numpy()[0], [[1, 0, 0], [1, 1, 0],
                                                  [1, 1, 0]])


def test_sequence_targets_never_see_later_positions():
  layer = _layer()
  sequence = tf.random.normal([1, 5, 4])
  mask = target_attention.causal_history_mask(tf.ones([1, 5], tf.bool))
  changed_future = tf.concat([sequence[:, :3], tf.random.normal([1, 2, 4])], 1)
  before = layer(sequence, sequence, mask).numpy()
  # Targets are unchanged, only the history after position 2 differs.
  after = layer(sequence, changed_future, mask).numpy()
  np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-6)
  assert not np.allclose(before[:, 3:], after[:, 3:])


def test_padding_is_ignored_and_empty_histories_give_zeros():
  layer = _layer()
  targets = tf.random.normal([2, 3, 4])
  real = tf.random.normal([2, 2, 4])
  mask = tf.constant([[True, True, False, False], [False] * 4])
  out_a = layer(targets, tf.concat([real, tf.zeros([2, 2, 4])], 1), mask)
  out_b = layer(targets, tf.concat([real, 9.0 * tf.ones([2, 2, 4])], 1), mask)
  np.testing.assert_allclose(out_a.numpy()[0], out_b.numpy()[0], atol=1e-6)
  bias = layer.output_projection.bias.numpy()
  np.testing.assert_allclose(out_a.numpy()[1], np.tile(bias, [3, 1]),
                             atol=1e-6)


def test_top_k_equals_attention_over_the_selected_items():
  full = _layer()
  targets = tf.random.normal([1, 1, 4])
  history = tf.random.normal([1, 6, 4])
  mask = tf.ones([1, 6], tf.bool)
  full(targets, history, mask)
  selecting = _layer(top_k=2)
  selecting(targets, history, mask)
  selecting.set_weights(full.get_weights())
  relevance = full.relevance(targets, history).numpy()[0, 0]
  best_two = np.argsort(-relevance)[:2]
  only_best = np.isin(np.arange(6), best_two)[np.newaxis]
  np.testing.assert_allclose(
      selecting(targets, history, mask).numpy(),
      full(targets, history, tf.constant(only_best)).numpy(), atol=1e-6)
  all_items = _layer(top_k=6)
  all_items(targets, history, mask)
  all_items.set_weights(full.get_weights())
  np.testing.assert_allclose(all_items(targets, history, mask).numpy(),
                             full(targets, history, mask).numpy(), atol=1e-6)


def test_rerank_picks_the_exact_top_k_within_the_approximate_shortlist():
  full = _layer()
  targets = tf.random.normal([1, 1, 4])
  history = tf.random.normal([1, 6, 4])
  mask = tf.ones([1, 6], tf.bool)
  full(targets, history, mask)
  best_first = np.argsort(-full.relevance(targets, history).numpy()[0, 0])
  # Approximate ranking: the exact 6th first, the exact best last.
  approximate = np.zeros(6, np.float32)
  approximate[best_first[[5, 2, 1, 3, 4, 0]]] = [6, 5, 4, 3, 2, 1]
  approximate = tf.constant(approximate[np.newaxis, np.newaxis])

  def attends_to(rerank_factor, exact_ranks):
    selecting = _layer(top_k=2, rerank_factor=rerank_factor)
    selecting(targets, history, mask)
    selecting.set_weights(full.get_weights())
    only = np.isin(np.arange(6), best_first[exact_ranks])[np.newaxis]
    np.testing.assert_allclose(
        selecting(targets, history, mask,
                  selection_scores=approximate).numpy(),
        full(targets, history, tf.constant(only)).numpy(), atol=1e-6)

  # Factor 1: the approximate top-2 alone.
  attends_to(1, [5, 2])
  # Factor 2: the exact top-2 of the approximate top-4, which lacks the
  # exact best.
  attends_to(2, [1, 2])
  # Factor 3: the shortlist is the whole history, so selection is exact.
  attends_to(3, [0, 1])


def test_rerank_factor_must_be_positive():
  with pytest.raises(ValueError, match="below 1"):
    target_attention.MultiHeadTargetAttention(2, 4, top_k=2, rerank_factor=0)


def test_relevance_sums_the_heads_logits():
  layer = _layer(num_heads=2, dim=4)
  targets = tf.random.normal([1, 1, 4])
  history = tf.random.normal([1, 3, 4])
  layer(targets, history, tf.ones([1, 3], tf.bool))
  q = targets.numpy()[0] @ layer.query_projection.kernel.numpy()
  k = history.numpy()[0] @ layer.key_projection.kernel.numpy()
  per_head = sum(q[:, h * 2:(h + 1) * 2] @ k[:, h * 2:(h + 1) * 2].T
                 for h in range(2)) / np.sqrt(2.0)
  np.testing.assert_allclose(layer.relevance(targets, history).numpy()[0],
                             per_head, rtol=1e-5)


def test_top_k_mask_known_values():
  scores = tf.constant([[3.0, 1.0, 2.0, 5.0]])
  mask = tf.constant([[True, True, True, False]])
  np.testing.assert_array_equal(
      target_attention.top_k_mask(scores, mask, 2).numpy(),
      [[True, False, True, False]])
  np.testing.assert_array_equal(
      target_attention.top_k_mask(scores, mask, 4).numpy(), mask.numpy())


def test_top_k_mask_keeps_exactly_k_with_the_earliest_ties():
  scores = tf.constant([[1.0, 2.0, 2.0, 2.0, 0.0]])
  np.testing.assert_array_equal(
      target_attention.top_k_mask(scores, tf.ones([1, 5], tf.bool), 2),
      [[False, True, True, False, False]])
  np.testing.assert_array_equal(
      target_attention.top_k_mask(
          scores, tf.constant([[True, False, True, True, True]]), 3),
      [[True, False, True, True, False]])
  # Fewer allowed positions than k: all of them, and no masked one.
  np.testing.assert_array_equal(
      target_attention.top_k_mask(
          scores, tf.constant([[False, False, True, False, True]]), 3),
      [[False, False, True, False, True]])


def test_top_k_positions_known_values():
  scores = tf.constant([[1.0, 2.0, 2.0, 5.0, 0.0]])
  positions, allowed = target_attention.top_k_positions(
      scores, tf.constant([[True, True, True, False, True]]), 3)
  np.testing.assert_array_equal(positions, [[1, 2, 0]])
  np.testing.assert_array_equal(allowed, [[True, True, True]])
  positions, allowed = target_attention.top_k_positions(
      scores, tf.constant([[False, False, True, False, False]]), 2)
  assert positions.numpy()[0, 0] == 2
  np.testing.assert_array_equal(allowed, [[True, False]])


@pytest.mark.parametrize("rerank_factor", [None, 1, 2])
def test_gathered_selection_equals_masked_attention(rerank_factor):
  rng = np.random.default_rng(0)
  # Repeated history items tie in relevance; the second user has two real
  # items only, fewer than K.
  history = rng.normal(size=(2, 8, 4)).astype(np.float32)
  history[0, 5] = history[0, 1]
  history[0, 6] = history[0, 1]
  history = tf.constant(history)
  mask = tf.constant([[True] * 7 + [False], [True, True] + [False] * 6])
  targets = tf.random.normal([2, 3, 4], seed=1)
  layer = _layer(top_k=3, rerank_factor=rerank_factor or 1)
  relevance = layer.relevance(targets, history)
  if rerank_factor is None:
    masked = layer(targets, history, mask)
    positions, allowed = target_attention.top_k_positions(
        relevance, mask[:, tf.newaxis], 3)
  else:
    # Coarse approximate scores, with ties of their own.
    approximate = tf.round(relevance * 2.0) / 2.0
    masked = layer(targets, history, mask, selection_scores=approximate)
    positions, allowed = target_attention.rerank_positions(
        approximate, mask[:, tf.newaxis],
        lambda shortlist: tf.gather(relevance, shortlist, batch_dims=2), 3,
        rerank_factor)
  assert positions.shape == (2, 3, 3)
  np.testing.assert_array_equal(allowed[1, :, 2], [False] * 3)
  np.testing.assert_allclose(
      layer.attend_selected(
          targets, tf.gather(history, positions, batch_dims=1), allowed),
      masked, atol=1e-6)


def test_dim_must_divide_into_heads():
  with pytest.raises(ValueError, match="divisible"):
    target_attention.MultiHeadTargetAttention(num_heads=3, dim=8)
