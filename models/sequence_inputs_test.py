"""Tests for reading each user's sequence and cutting SASRec's windows."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import sequence_inputs
from models import user_rows


def _rows(rows):
  """Per-interaction rows from `(user, target, hour)` tuples."""
  return {
      features.USER_INDEX: np.array([user for user, _, _ in rows]),
      features.ITEM_INDEX: np.array([target for _, target, _ in rows]),
      features.HOUR_OF_DAY: np.array([hour for _, _, hour in rows]),
      features.DAY_OF_WEEK: np.zeros(len(rows), np.int64),
      features.TIMESTAMP_Z: np.zeros(len(rows), np.float32),
  }


def _user_examples(sequences, sparse=False):
  """Per-user transformed examples from `user -> [(item, hour), ...]`, with
  every feature `user_rows.expand_user_rows` reads."""
  def varlen(per_user, width=1):
    ragged = tf.ragged.constant(
        [np.repeat(values, width).tolist() for values in per_user],
        dtype=tf.int64)
    return ragged.to_sparse() if sparse else ragged
  items = [[item for item, _ in positives] for positives in sequences.values()]
  hours = [[hour for _, hour in positives] for positives in sequences.values()]
  zeros = [[0] * len(positives) for positives in sequences.values()]
  return {
      features.USER_INDEX: tf.constant(list(sequences), tf.int64),
      features.SEQUENCE_ITEM_INDICES: varlen(items),
      features.SEQUENCE_HOUR_OF_DAY: varlen(hours),
      features.SEQUENCE_DAY_OF_WEEK: varlen(zeros),
      features.SEQUENCE_TIMESTAMP_Z: tf.cast(varlen(zeros), tf.float32),
      features.SEQUENCE_IS_VIDEO: varlen(zeros),
      features.SEQUENCE_TITLE_TOKEN_INDICES: varlen(zeros,
                                                    features.TITLE_LENGTH),
      features.SEQUENCE_CATEGORY_INDICES: varlen(zeros,
                                                 features.CATEGORY_LENGTH),
      features.SEQUENCE_QUERY_TOKEN_INDICES: varlen(zeros,
                                                    features.QUERY_LENGTH),
      features.NEGATIVE_ITEM_INDICES: varlen([[] for _ in sequences]),
      features.NEGATIVE_TITLE_TOKEN_INDICES: varlen([[] for _ in sequences]),
      features.NEGATIVE_CATEGORY_INDICES: varlen([[] for _ in sequences]),
  }


@pytest.mark.parametrize("sparse", [False, True])
def test_user_examples_are_read_as_their_sequences(sparse):
  # User 7 chose 5, 9, 4 (hours 10, 11, 12); user 3 chose 8; two batches.
  first = _user_examples({7: [(5, 10), (9, 11), (4, 12)]}, sparse)
  second = _user_examples({3: [(8, 1)]}, sparse)
  rows = sequence_inputs.read_user_sequences([first, second])
  np.testing.assert_array_equal(rows.users, [7, 7, 7, 3])
  np.testing.assert_array_equal(rows.targets, [5, 9, 4, 8])
  np.testing.assert_array_equal(rows.positions, [0, 1, 2, 0])
  np.testing.assert_array_equal(rows.context[features.HOUR_OF_DAY],
                                [10, 11, 12, 1])

  windows = sequence_inputs.windows(rows, np.ones(4, bool), length=4,
                                    every_window=True)
  # User 3 has no next item; user 7 reads 5, 9 and predicts 9, 4, with the
  # hour of the request that chose each target.
  np.testing.assert_array_equal(windows[features.HISTORY_ITEM_INDICES],
                                [[5, 9, 0, 0]])
  np.testing.assert_array_equal(windows[features.ITEM_INDEX], [[9, 4, 0, 0]])
  np.testing.assert_array_equal(windows[features.HOUR_OF_DAY],
                                [[11, 12, 0, 0]])


def test_the_direct_read_places_the_expanded_rows_in_their_order():
  examples = _user_examples({4: [(2, 1), (6, 2)], 1: [(3, 5)],
                             9: [(7, 3), (2, 4), (8, 6)]})
  direct = sequence_inputs.read_user_sequences([examples])
  expanded = sequence_inputs.read_sequence_rows(
      [{name: values.numpy() for name, values in
        user_rows.expand_user_rows(examples).items()}])
  for name in ("users", "targets", "positions"):
    np.testing.assert_array_equal(getattr(direct, name),
                                  getattr(expanded, name), name)
  for name in sequence_inputs.CONTEXT_FEATURES:
    np.testing.assert_array_equal(direct.context[name],
                                  expanded.context[name], name)


def test_rows_are_placed_by_their_order_within_their_user():
  rows = sequence_inputs.read_sequence_rows(
      [_rows([(7, 5, 0), (7, 9, 0)]), _rows([(7, 4, 0), (3, 8, 0)])])
  np.testing.assert_array_equal(rows.positions, [0, 1, 2, 0])
  np.testing.assert_array_equal(rows.targets, [5, 9, 4, 8])


def test_a_user_whose_rows_are_apart_is_refused():
  with pytest.raises(ValueError, match="user 7's rows are not all together"):
    sequence_inputs.read_sequence_rows(
        [_rows([(7, 5, 0), (3, 8, 0), (7, 9, 0)])])


def test_windows_end_every_length_items_before_the_newest():
  sequence = list(range(1, 8))  # 7 items: targets 2..7.
  rows = sequence_inputs.read_sequence_rows(
      [_rows([(0, item, 0) for item in sequence])])
  every = sequence_inputs.windows(rows, np.ones(7, bool), length=3,
                                  every_window=True)
  np.testing.assert_array_equal(every[features.HISTORY_ITEM_INDICES],
                                [[4, 5, 6], [1, 2, 3]])
  np.testing.assert_array_equal(every[features.ITEM_INDEX],
                                [[5, 6, 7], [2, 3, 4]])
  # The newest window only; dropping the newest example (validation) makes
  # the window end one item earlier.
  keep = rows.positions < 6
  newest = sequence_inputs.windows(rows, keep, length=3, every_window=False)
  np.testing.assert_array_equal(newest[features.HISTORY_ITEM_INDICES],
                                [[3, 4, 5]])
  np.testing.assert_array_equal(newest[features.ITEM_INDEX], [[4, 5, 6]])
