"""Tests for validation by full-catalogue ranking."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models.retrieval import validation as retrieval_validation


def _ranks_at_once(scores, histories, targets, servable, items_per_chunk=None):
  """`target_ranks` of a score matrix, the target scores read from it."""
  return retrieval_validation.target_ranks(
      lambda start, stop: scores[:, start:stop],
      scores[np.arange(len(targets)), targets], histories, targets, servable,
      items_per_chunk=items_per_chunk or scores.shape[1])


def test_target_ranks_skip_history_and_unservable_items_and_count_ties():
  scores = np.array([[0.0, 0.9, 0.8, 0.5, 0.5, 0.1],
                     [0.0, 0.9, 0.8, 0.5, 0.5, 0.1],
                     [0.0, 0.9, 0.8, 0.5, 0.5, 0.1]])
  histories = np.array([[1, 0], [0, 0], [3, 0]])
  servable = np.array([False, True, True, True, True, False])
  ranks = _ranks_at_once(scores, histories, np.array([3, 3, 3]), servable)
  # Row 0: item 1 is history, 2 is ahead, 4 ties (counts ahead): rank 2.
  # Row 1: items 1, 2 and the tie 4 are ahead: 3. Row 2: the target is
  # in the history, so it gets the worst rank, the 3 available items.
  np.testing.assert_array_equal(ranks, [2, 3, 3])


@pytest.mark.parametrize("items_per_chunk", [1, 3, 7, 64])
def test_ranks_by_chunks_are_the_ranks_of_the_whole_catalogue(
    items_per_chunk):
  rng = np.random.default_rng(0)
  # Few distinct scores, so that ties are common; histories with repeats,
  # padding and sometimes the target.
  scores = rng.integers(0, 5, size=(40, 64)).astype(np.float32)
  histories = rng.integers(0, 64, size=(40, 6))
  targets = rng.integers(1, 64, size=40)
  histories[::7, 2] = targets[::7]
  servable = rng.random(64) > 0.2
  servable[0] = False
  expected = _ranks_at_once(scores, histories, targets, servable)
  np.testing.assert_array_equal(
      _ranks_at_once(scores, histories, targets, servable, items_per_chunk),
      expected)
  # Unreachable targets get every available item.
  row = 7
  assert expected[row] == np.sum(
      servable & ~np.isin(np.arange(64), histories[row]))


class _Towers:
  """Query i prefers item i; every candidate is a one-hot of its index."""

  @staticmethod
  def query(rows):
    return tf.one_hot(rows[features.USER_INDEX], 4)

  @staticmethod
  def candidate(items):
    return tf.one_hot(items[features.ITEM_INDEX], 4)


def _catalogue():
  return catalogue_lib.ItemCatalogue(
      item_ids=np.array(["", "a", "b", "c"], dtype=object),
      candidate_features={features.ITEM_INDEX: np.arange(4)},
      train_counts=np.array([0.0, 1.0, 1.0, 1.0]))


def test_validator_scores_recall_and_ndcg_of_the_towers():
  rows = {features.USER_INDEX: np.array([1, 2, 3]),
          features.ITEM_INDEX: np.array([1, 3, 3]),
          features.HISTORY_ITEM_INDICES: np.zeros([3, 2], np.int64)}
  validator = retrieval_validation.Validator(
      rows, _catalogue(), _Towers.query, _Towers.candidate)
  scores = validator()
  # Rows 0 and 2 rank their target first (NDCG 1); row 1 ranks item 3
  # behind item 2 and the tied item 1 (rank 2, NDCG 1/log2(4) = 0.5).
  assert scores.recall_at_50 == 1.0
  assert scores.ndcg_at_10 == pytest.approx((1.0 + 0.5 + 1.0) / 3)


def test_validator_trims_each_block_to_its_longest_history(monkeypatch):
  # Two rows a block, scored a catalogue's 4 items in two chunks.
  monkeypatch.setattr(retrieval_validation, "_ROWS_PER_BLOCK", 2)
  monkeypatch.setattr(retrieval_validation, "_CELLS_PER_CHUNK", 4)
  widths = []

  def query(rows):
    history = rows[features.HISTORY_ITEM_INDICES]
    widths.append(int(history.shape[1]))
    # Query i prefers item i, and the history's items above the others.
    return (tf.one_hot(rows[features.USER_INDEX], 4) +
            tf.reduce_sum(tf.one_hot(history, 4), axis=1) * 0.1)

  rows = {features.USER_INDEX: np.array([1, 2, 3, 2]),
          features.ITEM_INDEX: np.array([1, 3, 3, 3]),
          features.HISTORY_ITEM_INDICES: np.array(
              [[2, 2, 3], [0, 0, 0], [1, 0, 0], [2, 1, 0]])}
  # Eagerly, so that the tower sees each block's own shape.
  tf.config.run_functions_eagerly(True)
  try:
    scores = retrieval_validation.Validator(
        rows, _catalogue(), query, _Towers.candidate)()
  finally:
    tf.config.run_functions_eagerly(False)
  # Blocks in length order: rows 1 and 2 (width 1), rows 3 and 0 (width 3).
  # History items are not ranked: rows 0, 2 and 3 rank their target first;
  # row 1, with no history, behind item 2 and the tied item 1 (NDCG 0.5).
  # Row 3 cut to its first history item would rank item 1 ahead of 3.
  assert widths == [1, 3]
  assert scores.recall_at_50 == 1.0
  assert scores.ndcg_at_10 == pytest.approx((1.0 + 0.5 + 1.0 + 1.0) / 4)


def test_a_constant_scorer_ranks_every_target_last():
  rows = {features.USER_INDEX: np.array([1, 2, 3]),
          features.ITEM_INDEX: np.array([1, 3, 3]),
          features.HISTORY_ITEM_INDICES: np.array([[0, 0], [1, 0], [0, 0]])}
  query = lambda rows: tf.ones([tf.size(rows[features.USER_INDEX]), 8]) / 3
  candidate = lambda items: tf.ones([tf.size(items[features.ITEM_INDEX]), 8])
  validator = retrieval_validation.Validator(rows, _catalogue(), query,
                                             candidate)
  # Every available item ties with the target, and ties count against it:
  # ranks 2, 1 (item 1 is history) and 2, all within the top 50 but no
  # NDCG@10 of 1.
  assert validator().recall_at_50 == 1.0
  assert validator().ndcg_at_10 == pytest.approx(
      (1 / np.log2(4) + 1 / np.log2(3) + 1 / np.log2(4)) / 3)


def test_validator_needs_a_row():
  rows = {features.ITEM_INDEX: np.zeros(0, np.int64)}
  with pytest.raises(ValueError, match="no validation row"):
    retrieval_validation.Validator(rows, _catalogue(), _Towers.query,
                                   _Towers.candidate)
