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
