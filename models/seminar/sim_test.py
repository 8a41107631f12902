"""Tests for the SIM ranker: only the candidate's category is read."""

import numpy as np
import tensorflow as tf

from models.seminar import ctr_ranker
from models.seminar import item_features
from models.seminar import sim

# Items 1-6; categories 1, 1, 2, 2, 3, 3.
ITEM_CATEGORIES = np.array([0, 1, 1, 2, 2, 3, 3])
CATALOGUE = item_features.ItemFeatures(ITEM_CATEGORIES, 4)


def logits(ranker, history, candidates):
  return ranker.logits({
      ctr_ranker.HISTORY: tf.constant(history, tf.int32),
      ctr_ranker.CANDIDATE: tf.constant(candidates, tf.int32)}).numpy()


def small_ranker():
  tf.keras.utils.set_random_seed(0)
  return sim.SimRanker(CATALOGUE, embedding_dim=4)


def test_items_of_other_categories_change_nothing():
  ranker = small_ranker()
  # Candidate 2 (category 1): items 3-6 are filtered out by hard search.
  np.testing.assert_allclose(logits(ranker, [[1, 3, 5, 6]], [2]),
                             logits(ranker, [[1, 4, 6, 0]], [2]), rtol=1e-6)
  np.testing.assert_allclose(logits(ranker, [[3, 5, 0, 0]], [2]),
                             logits(ranker, [[0, 0, 0, 0]], [2]), rtol=1e-6)


def test_items_of_the_candidates_category_are_attended():
  ranker = small_ranker()
  assert not np.allclose(logits(ranker, [[1, 3]], [2]),
                         logits(ranker, [[2, 3]], [2]))
