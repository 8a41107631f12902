"""Known-value tests of InfoNCE."""

import math

import numpy as np
import pytest
import tensorflow as tf

from models.layers import contrastive


def test_identical_rows_give_log_batch_size():
  rows = tf.ones([4, 3])
  loss = contrastive.info_nce_loss(rows, rows, temperature=0.1)
  assert float(loss) == pytest.approx(math.log(4), rel=1e-6)


def test_matches_the_closed_form_on_a_tiny_example():
  queries = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
  candidates = np.array([[0.8, 0.6], [0.6, 0.8], [1.0, 0.0]], np.float32)
  temperature = 0.5
  logits = queries @ candidates.T / temperature
  expected = np.mean([
      -logits[i, i] + np.log(np.exp(logits[i]).sum()) for i in range(2)])
  loss = contrastive.info_nce_loss(queries, candidates, temperature)
  assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_log_q_shifts_each_candidate_logit_by_its_log_probability():
  queries = tf.constant([[1.0, 2.0]])
  candidates = tf.constant([[0.5, 0.5], [1.0, -1.0]])
  log_q = tf.math.log(tf.constant([0.25, 0.5]))
  plain = contrastive.info_nce_logits(queries, candidates, 1.0)
  corrected = contrastive.info_nce_logits(queries, candidates, 1.0, log_q)
  np.testing.assert_allclose(plain - corrected, [[math.log(0.25), math.log(0.5)]],
                             rtol=1e-6)


def test_accidental_hits_are_masked_not_pushed_away():
  queries = tf.constant([[1.0, 0.0]])
  # The extra negative is the positive item again.
  candidates = tf.constant([[1.0, 0.0], [1.0, 0.0]])
  unmasked = contrastive.info_nce_loss(queries, candidates, 1.0)
  masked = contrastive.info_nce_loss(queries, candidates, 1.0,
                                     candidate_ids=tf.constant([7, 7]))
  assert float(unmasked) == pytest.approx(math.log(2), rel=1e-6)
  assert float(masked) == pytest.approx(0.0, abs=1e-6)


def test_softmax_losses_mask_hits_among_per_row_candidates():
  # Row 0's positive (id 4) sits in column 1 and repeats in column 2; row 1's
  # positive (id 6) in column 0 has no repeat.
  logits = tf.zeros([2, 3])
  losses = contrastive.softmax_losses(
      logits, positive_positions=tf.constant([1, 0]),
      positive_ids=tf.constant([4, 6]),
      candidate_ids=tf.constant([[5, 4, 4], [6, 7, 8]]))
  np.testing.assert_allclose(losses, [math.log(2), math.log(3)], rtol=1e-6)


def test_cosine_info_nce_normalises_both_sides():
  queries = tf.constant([[3.0, 0.0], [0.0, 0.5]])
  candidates = tf.constant([[2.0, 0.0], [0.0, 7.0]])
  # Unit rows: logits [[1, 0], [0, 1]] / 0.5.
  expected = math.log(1 + math.exp(-2.0))
  loss = contrastive.cosine_info_nce_loss(queries, candidates, 0.5)
  assert float(loss) == pytest.approx(expected, rel=1e-6)


def _fixed_rows():
  rng = np.random.default_rng(7)
  anchors = tf.constant(rng.normal(size=(5, 4)), tf.float32)
  positives = tf.constant(rng.normal(size=(5, 4)), tf.float32)
  # Ids 3 and 8 repeat: two accidental hits each way.
  ids = tf.constant([3, 8, 3, 1, 8], tf.int64)
  return anchors, positives, ids


def test_cosine_info_nce_equals_seminars_former_in_batch_formula():
  """The PSU's former `_info_nce`, masking same-id negatives with -1e9."""
  anchors, positives, ids = _fixed_rows()
  logits = tf.matmul(tf.math.l2_normalize(anchors, -1),
                     tf.math.l2_normalize(positives, -1),
                     transpose_b=True) / 0.1
  same = tf.equal(ids[:, tf.newaxis], ids[tf.newaxis, :])
  logits = tf.where(same & ~tf.eye(5, dtype=tf.bool), -1e9, logits)
  former = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      tf.range(5), logits))
  shared = contrastive.cosine_info_nce_loss(anchors, positives, 0.1, ids)
  assert float(shared) == float(former)


def test_in_batch_loss_equals_guims_former_score_formula():
  """GUIM's former `loss_from_scores`, with logQ and extra negatives."""
  anchors, positives, ids = _fixed_rows()
  scores = tf.matmul(anchors, tf.concat([positives, anchors[:2]], 0),
                     transpose_b=True)
  candidate_ids = tf.concat([ids, ids[:2]], 0)
  log_q = tf.math.log(tf.linspace(0.1, 0.7, 7))
  logits = scores / 0.2 - log_q[tf.newaxis, :]
  same_id = tf.equal(candidate_ids[:5, tf.newaxis],
                     candidate_ids[tf.newaxis, :])
  diagonal = tf.cast(tf.one_hot(tf.range(5), 7), tf.bool)
  logits = tf.where(same_id & ~diagonal, logits.dtype.min, logits)
  former = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.range(5), logits=logits))
  shared = contrastive.in_batch_loss(
      contrastive.scaled_logits(scores, 0.2, log_q), candidate_ids)
  assert float(shared) == float(former)
