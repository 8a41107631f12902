"""Tests for the SASRec-class CTR ranker: the recent window and the score."""

import numpy as np
import tensorflow as tf

from models.seminar import ctr_ranker
from models.seminar import item_features
from models.seminar import sasrec_ranker

ITEM_CATEGORIES = np.array([0, 1, 1, 2, 2, 3, 3])
CATALOGUE = item_features.ItemFeatures(ITEM_CATEGORIES, 4)


def test_most_recent_items_keeps_the_last_real_items_oldest_first():
  history = tf.constant([[1, 2, 3, 4, 5], [6, 2, 0, 0, 0], [0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(
      sasrec_ranker.most_recent_items(history, 3),
      [[3, 4, 5], [6, 2, 0], [0, 0, 0]])
  # Wider than the batch's histories: padded on the right.
  np.testing.assert_array_equal(
      sasrec_ranker.most_recent_items(history[:, :2], 3),
      [[1, 2, 0], [6, 2, 0], [0, 0, 0]])


def _ranker():
  tf.keras.utils.set_random_seed(0)
  return sasrec_ranker.SasRecRanker(CATALOGUE, embedding_dim=4,
                                    max_length=2, num_blocks=1, num_heads=1,
                                    dropout=0.0)


def _logits(ranker, history, candidates):
  return ranker.logits({
      ctr_ranker.HISTORY: tf.constant(history, tf.int32),
      ctr_ranker.CANDIDATE: tf.constant(candidates, tf.int32)}).numpy()


def test_only_the_most_recent_items_are_read():
  ranker = _ranker()
  np.testing.assert_allclose(_logits(ranker, [[1, 3, 5]], [2]),
                             _logits(ranker, [[6, 3, 5]], [2]), rtol=1e-6)
  assert not np.allclose(_logits(ranker, [[1, 3, 5]], [2]),
                         _logits(ranker, [[1, 4, 5]], [2]))


def test_the_logit_is_the_last_state_dotted_with_the_candidate_plus_bias():
  ranker = _ranker()
  _logits(ranker, [[1, 2]], [3])  # Builds the layers.
  ranker.bias.assign(0.5)
  history = tf.constant([[1, 2, 0], [4, 0, 0]], tf.int32)
  state = ranker.user_state(history).numpy()
  candidates = ranker.items(tf.constant([3, 6])).numpy()
  np.testing.assert_allclose(
      _logits(ranker, history, [3, 6]),
      np.sum(state * candidates, axis=1) + 0.5, rtol=1e-5)
  # The state is the encoder's output at the last real item.
  recent = tf.constant([[1, 2]], tf.int32)
  encoded = ranker.encoder(ranker.items(recent), tf.not_equal(recent, 0))
  np.testing.assert_allclose(state[0], encoded[0, 1], rtol=1e-5)
