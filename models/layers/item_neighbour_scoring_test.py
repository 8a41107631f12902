"""Tests for scoring a catalogue from sparse item neighbours."""

import numpy as np
import pytest
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


def _scores(scorer, history, items_per_range=4):
  """Scores of the 4 item indices, ranges of `items_per_range` side by side."""
  neighbours = scorer.history_neighbours(history)
  return np.concatenate(
      [scorer.score_range(neighbours, start, min(items_per_range, 4 - start))
       for start in range(0, 4, items_per_range)], axis=1)


@pytest.mark.parametrize("items_per_range", [1, 3, 4])
def test_scores_sum_the_history_items_rows_and_ignore_padding(
    items_per_range):
  history = tf.constant([[1, 2, 0], [3, 3, 0], [0, 0, 0]])
  scores = _scores(_scorer(), history, items_per_range)
  np.testing.assert_array_equal(scores, [[0, 1, 0.5, -0.25],
                                         [0, 4, 0, 0],
                                         [0, 0, 0, 0]])


def test_a_range_drops_the_neighbours_outside_it():
  # Item 1's neighbours are 2 and 3: a range of item 3 alone keeps B[1, 3].
  scorer = _scorer()
  scores = scorer.score_range(
      scorer.history_neighbours(tf.constant([[1, 0]])), 3, 1)
  np.testing.assert_array_equal(scores.numpy(), [[0.25]])


def test_query_dot_candidate_is_the_score():
  scorer = _scorer()
  history = tf.constant([[1, 2, 0], [3, 3, 1]])
  counts = scorer.history_counts(history).numpy()
  np.testing.assert_allclose(counts, [[0, 1, 1, 0], [0, 1, 0, 2]])
  columns = scorer.item_columns(tf.constant([0, 1, 2, 3])).numpy()
  np.testing.assert_allclose(columns, _DENSE_B.T)
  np.testing.assert_allclose(counts @ columns.T, _scores(scorer, history))
