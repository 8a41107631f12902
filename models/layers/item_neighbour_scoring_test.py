"""Tests for scoring a catalogue from sparse item neighbours."""

import numpy as np
import tensorflow as tf

from models.layers import item_neighbour_scoring

# Four item indices, index 0 is padding; two neighbours each.
# B[1, 2] = 0.5, B[1, 3] = 0.25, B[2, 1] = 1, B[2, 3] = -0.5, B[3, 1] = 2,
# B[3, 2] = 0; padding's row is all zero.
_INDICES = np.array([[1, 2], [2, 3], [1, 3], [1, 2]])
_WEIGHTS = np.array([[0, 0], [0.5, 0.25], [1, -0.5], [2, 0]], np.float32)
_DENSE_B = np.array([[0, 0, 0, 0],
                     [0, 0, 0.5, 0.25],
                     [0, 1, 0, -0.5],
                     [0, 2, 0, 0]], np.float32)


def _scorer():
  return item_neighbour_scoring.ItemNeighbourScorer(_INDICES, _WEIGHTS)


def test_scores_sum_the_history_items_rows_and_ignore_padding():
  history = tf.constant([[1, 2, 0], [3, 3, 0], [0, 0, 0]])
  scores = _scorer()(history).numpy()
  np.testing.assert_allclose(scores, [[0, 1, 0.5, -0.25],
                                      [0, 4, 0, 0],
                                      [0, 0, 0, 0]])


def test_query_dot_candidate_is_the_score():
  scorer = _scorer()
  history = tf.constant([[1, 2, 0], [3, 3, 1]])
  counts = scorer.history_counts(history).numpy()
  np.testing.assert_allclose(counts, [[0, 1, 1, 0], [0, 1, 0, 2]])
  columns = scorer.item_columns(tf.constant([0, 1, 2, 3])).numpy()
  np.testing.assert_allclose(columns, _DENSE_B.T)
  np.testing.assert_allclose(counts @ columns.T, scorer(history).numpy())
