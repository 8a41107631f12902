"""Tests for the DIN ranker."""

import numpy as np
import tensorflow as tf

from models.seminar import ctr_ranker
from models.seminar import item_features
from models.seminar import din

# Items 1-6; categories 1, 1, 2, 2, 3, 3.
ITEM_CATEGORIES = np.array([0, 1, 1, 2, 2, 3, 3])
CATALOGUE = item_features.ItemFeatures(ITEM_CATEGORIES, 4)


def batch(history, candidates):
  return {ctr_ranker.HISTORY: tf.constant(history, tf.int32),
          ctr_ranker.CANDIDATE: tf.constant(candidates, tf.int32)}


def test_one_logit_per_example_and_padding_changes_nothing():
  tf.keras.utils.set_random_seed(0)
  ranker = din.DinRanker(CATALOGUE, embedding_dim=4)
  short = ranker.logits(batch([[1, 3], [5, 0]], [2, 6])).numpy()
  padded = ranker.logits(batch([[1, 3, 0, 0], [5, 0, 0, 0]], [2, 6])).numpy()
  assert short.shape == (2,)
  np.testing.assert_allclose(short, padded, rtol=1e-6)


def test_every_history_item_counts():
  tf.keras.utils.set_random_seed(0)
  ranker = din.DinRanker(CATALOGUE, embedding_dim=4)
  # Item 5 is of another category than the candidate: DIN still reads it.
  with_it = ranker.logits(batch([[1, 5]], [2])).numpy()
  without = ranker.logits(batch([[1, 0]], [2])).numpy()
  assert not np.allclose(with_it, without)
