"""Tests for merging per-vector neighbour lists."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from serving import multi_vector

# One user, two vectors, three neighbours each, best first. "b" is found by
# both vectors, with its best score (0.8) from the second.
_IDS = [[["a", "b", "c"], ["b", "d", ""]]]
_SCORES = [[[0.9, 0.5, 0.1], [0.8, 0.7, float("-inf")]]]


def _merge(k, rule, ids=_IDS, scores=_SCORES):
  merged_ids, merged_scores = multi_vector.merge_neighbours(
      tf.constant(ids), tf.constant(scores, tf.float32), k, rule)
  return merged_ids.numpy().astype(str).tolist(), merged_scores.numpy()


def test_max_rule_ranks_the_union_by_best_score_without_duplicates():
  ids, scores = _merge(5, multi_vector.MAX)
  assert ids == [["a", "b", "d", "c", ""]]
  np.testing.assert_allclose(scores, [[0.9, 0.8, 0.7, 0.1, -np.inf]])


def test_round_robin_takes_turns_and_reports_the_best_score():
  ids, scores = _merge(4, multi_vector.ROUND_ROBIN)
  # a (v0 #1), b (v1 #1), then v0's b is taken, d (v1 #2), c (v0 #3).
  assert ids == [["a", "b", "d", "c"]]
  np.testing.assert_allclose(scores, [[0.9, 0.8, 0.7, 0.1]])


def test_rows_are_merged_separately():
  ids, scores = _merge(
      2, multi_vector.MAX,
      ids=[[["x", "y"], ["y", "x"]], [["y", "z"], ["x", "y"]]],
      scores=[[[0.5, 0.1], [0.6, 0.2]], [[0.3, 0.2], [0.9, 0.1]]])
  assert ids == [["y", "x"], ["x", "y"]]
  np.testing.assert_allclose(scores, [[0.6, 0.5], [0.9, 0.3]])


def test_max_rule_equals_the_exact_top_k_of_max_over_vectors():
  rng = np.random.default_rng(0)
  queries = rng.normal(size=(3, 4, 8)).astype(np.float32)
  items = rng.normal(size=(30, 8)).astype(np.float32)
  item_ids = np.array([f"i{n}" for n in range(30)])
  k = 6
  per_vector = queries @ items.T
  top = np.argsort(-per_vector, axis=2)[:, :, :k]
  ids, scores = _merge(k, multi_vector.MAX, ids=item_ids[top].tolist(),
                       scores=np.take_along_axis(per_vector, top, axis=2))
  exact = per_vector.max(axis=1)
  exact_top = np.argsort(-exact, axis=1)[:, :k]
  assert ids == item_ids[exact_top].tolist()
  np.testing.assert_allclose(scores, np.take_along_axis(exact, exact_top, 1),
                             rtol=1e-6)


def test_runs_inside_a_tf_function():
  merge = tf.function(lambda ids, scores: multi_vector.merge_neighbours(
      ids, scores, 2))
  ids, _ = merge(tf.constant(_IDS), tf.constant(_SCORES))
  assert ids.numpy().astype(str).tolist() == [["a", "b"]]


def test_unknown_rule_is_refused():
  with pytest.raises(ValueError, match="merge rule"):
    multi_vector.check_merge_rule("mean")
