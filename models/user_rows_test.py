"""Tests for expanding per-user train examples into per-interaction rows."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import user_rows


def _padded(values, width):
  """`values` right-padded with 0 to `width`."""
  return list(values) + [features.PADDING_INDEX] * (width - len(values))


def _varlen(rows, dtype=tf.int64):
  """`[B, None]` sparse tensor (tfxio's varlen layout) from per-example
  lists."""
  return tf.RaggedTensor.from_row_lengths(
      tf.constant([value for row in rows for value in row], dtype),
      [len(row) for row in rows]).to_sparse()


def _example(user, items, is_video=None, titles=None, categories=None,
             queries=None, hours=None, negatives=None, negative_titles=None,
             negative_categories=None):
  """One per-user example from its per-position lists.

  Titles, categories and queries are each position's tokens, unpadded;
  negatives, and their titles and categories, are per position lists of
  the same length. Unspecified per-position features are all 0, days are
  `hours + 10` and times `hours / 2`.
  """
  count = len(items)
  empty = [[] for _ in items]
  hours = hours or [0] * count
  negatives = negatives or empty
  return {
      features.USER_INDEX: user,
      features.SEQUENCE_ITEM_INDICES: items,
      features.SEQUENCE_IS_VIDEO: is_video or [0] * count,
      features.SEQUENCE_TITLE_TOKEN_INDICES: [
          token for tokens in titles or empty
          for token in _padded(tokens, features.TITLE_LENGTH)],
      features.SEQUENCE_CATEGORY_INDICES: [
          token for tokens in categories or empty
          for token in _padded(tokens, features.CATEGORY_LENGTH)],
      features.SEQUENCE_QUERY_TOKEN_INDICES: [
          token for tokens in queries or empty
          for token in _padded(tokens, features.QUERY_LENGTH)],
      features.SEQUENCE_HOUR_OF_DAY: hours,
      features.SEQUENCE_DAY_OF_WEEK: [hour + 10 for hour in hours],
      features.SEQUENCE_TIMESTAMP_Z: [hour / 2 for hour in hours],
      features.NEGATIVE_ITEM_INDICES: [
          item for position in negatives for item in position],
      features.NEGATIVE_TITLE_TOKEN_INDICES: [
          token for position in negative_titles or empty
          for tokens in position
          for token in _padded(tokens, features.TITLE_LENGTH)],
      features.NEGATIVE_CATEGORY_INDICES: [
          token for position in negative_categories or empty
          for tokens in position
          for token in _padded(tokens, features.CATEGORY_LENGTH)],
  }


def _batch(examples):
  """The examples as tfxio parses a batch of them, plus a per-row feature."""
  batch = {name: _varlen([example[name] for example in examples],
                         tf.float32 if name == features.SEQUENCE_TIMESTAMP_Z
                         else tf.int64)
           for name in examples[0] if name != features.USER_INDEX}
  batch[features.USER_INDEX] = tf.constant(
      [example[features.USER_INDEX] for example in examples], tf.int64)
  # The example's own row features are not expanded.
  batch[features.LABEL] = tf.ones([len(examples)], tf.float32)
  return batch


def _expanded(examples, **kwargs):
  return {name: values.numpy() for name, values in
          user_rows.expand_user_rows(_batch(examples), **kwargs).items()}


def _histories(rows, width=features.HISTORY_LENGTH):
  return np.array([_padded(row, width) for row in rows], np.int64)


def _history_queries(rows):
  """Each row's per-slot query tokens, flat, `[rows, 50 * 8]`."""
  return np.array([_padded(
      [token for tokens in slots
       for token in _padded(tokens, features.QUERY_LENGTH)],
      features.HISTORY_LENGTH * features.QUERY_LENGTH) for slots in rows],
                  np.int64)


# User 11: three positions, no negatives. User 12: two positions with two
# negatives each.
_TWO_USERS = [
    _example(11, [101, 102, 103], is_video=[1, 0, 1],
             titles=[[21], [22], [23]], categories=[[31], [32], [33]],
             queries=[[41], [], [43, 44]], hours=[1, 2, 3]),
    _example(12, [201, 202], titles=[[51], [52]], categories=[[61], [62]],
             queries=[[71], [72]], hours=[4, 5],
             negatives=[[901, 902], [903, 904]],
             negative_titles=[[[81], [82]], [[83], [84]]],
             negative_categories=[[[91], [92]], [[93], [94]]]),
]


def _assert_two_users_rows(rows):
  assert set(rows) == set(user_rows.ROW_SHAPES)
  np.testing.assert_array_equal(rows[features.USER_INDEX],
                                [11, 11, 11, 12, 12, 12, 12, 12, 12])
  np.testing.assert_array_equal(rows[features.ITEM_INDEX],
                                [101, 102, 103, 201, 901, 902, 202, 903, 904])
  np.testing.assert_array_equal(rows[features.LABEL],
                                [1, 1, 1, 1, 0, 0, 1, 0, 0])
  histories = [[], [101], [101, 102], [], [], [], [201], [201], [201]]
  np.testing.assert_array_equal(rows[features.HISTORY_ITEM_INDICES],
                                _histories(histories))
  np.testing.assert_array_equal(rows[features.HISTORY_LENGTH_FEATURE],
                                [0, 1, 2, 0, 0, 0, 1, 1, 1])
  np.testing.assert_array_equal(
      rows[features.VIDEO_NEIGHBOUR_INDICES],
      _histories([[], [101], [101], [], [], [], [], [], []]))
  np.testing.assert_array_equal(
      rows[features.ITEM_NEIGHBOUR_INDICES],
      _histories([[], [], [102], [], [], [], [201], [201], [201]]))
  np.testing.assert_array_equal(
      rows[features.TITLE_TOKEN_INDICES],
      _histories([[21], [22], [23], [51], [81], [82], [52], [83], [84]],
                 features.TITLE_LENGTH))
  np.testing.assert_array_equal(
      rows[features.CATEGORY_INDICES],
      _histories([[31], [32], [33], [61], [91], [92], [62], [93], [94]],
                 features.CATEGORY_LENGTH))
  np.testing.assert_array_equal(
      rows[features.QUERY_TOKEN_INDICES],
      _histories([[41], [], [43, 44], [71], [71], [71], [72], [72], [72]],
                 features.QUERY_LENGTH))
  np.testing.assert_array_equal(
      rows[features.HISTORY_QUERY_TOKEN_INDICES],
      _history_queries([[], [[41]], [[41], []], [], [], [], [[71]], [[71]],
                        [[71]]]))
  np.testing.assert_array_equal(rows[features.HOUR_OF_DAY],
                                [1, 2, 3, 4, 4, 4, 5, 5, 5])
  np.testing.assert_array_equal(rows[features.DAY_OF_WEEK],
                                [11, 12, 13, 14, 14, 14, 15, 15, 15])
  np.testing.assert_array_equal(rows[features.TIMESTAMP_Z],
                                [.5, 1, 1.5, 2, 2, 2, 2.5, 2.5, 2.5])
  for name, shape in user_rows.ROW_SHAPES.items():
    assert rows[name].shape == (9, *shape), name
    assert rows[name].dtype == (np.float32 if name in (
        features.LABEL, features.TIMESTAMP_Z) else np.int64), name


def test_each_position_is_a_positive_row_followed_by_its_negatives():
  _assert_two_users_rows(_expanded(_TWO_USERS))


def test_accepts_ragged_sequences_and_column_user_indices():
  batch = {name: (tf.RaggedTensor.from_sparse(values)
                  if isinstance(values, tf.SparseTensor) else values)
           for name, values in _batch(_TWO_USERS).items()}
  batch[features.USER_INDEX] = tf.reshape(batch[features.USER_INDEX], [-1, 1])
  _assert_two_users_rows({
      name: values.numpy()
      for name, values in user_rows.expand_user_rows(batch).items()})


def test_history_keeps_the_newest_items_within_the_length():
  rows = _expanded([_example(5, [1, 2, 3, 4], is_video=[1, 0, 0, 1],
                             queries=[[11], [12], [13], [14]])],
                   history_length=2)
  np.testing.assert_array_equal(rows[features.ITEM_INDEX], [1, 2, 3, 4])
  np.testing.assert_array_equal(rows[features.HISTORY_ITEM_INDICES],
                                _histories([[], [1], [1, 2], [2, 3]]))
  np.testing.assert_array_equal(rows[features.HISTORY_LENGTH_FEATURE],
                                [0, 1, 2, 2])
  np.testing.assert_array_equal(rows[features.VIDEO_NEIGHBOUR_INDICES],
                                _histories([[], [1], [1], []]))
  np.testing.assert_array_equal(rows[features.ITEM_NEIGHBOUR_INDICES],
                                _histories([[], [], [2], [2, 3]]))
  np.testing.assert_array_equal(
      rows[features.HISTORY_QUERY_TOKEN_INDICES],
      _history_queries([[], [[11]], [[11], [12]], [[12], [13]]]))


def test_neighbours_split_a_mixed_history_by_type_oldest_first():
  rows = _expanded([_example(5, [1, 2, 3, 4, 5], is_video=[0, 1, 0, 1, 1])])
  np.testing.assert_array_equal(rows[features.VIDEO_NEIGHBOUR_INDICES],
                                _histories([[], [], [2], [2], [2, 4]]))
  np.testing.assert_array_equal(rows[features.ITEM_NEIGHBOUR_INDICES],
                                _histories([[], [1], [1], [1, 3], [1, 3]]))


def test_a_full_history_keeps_the_last_fifty_items():
  items = list(range(1, 53))
  rows = _expanded([_example(5, items)])
  np.testing.assert_array_equal(rows[features.HISTORY_ITEM_INDICES][-1],
                                items[1:51])
  # Positions 49, 50 and 51 have 49, 50 and 51 earlier items.
  np.testing.assert_array_equal(rows[features.HISTORY_LENGTH_FEATURE][-3:],
                                [49, 50, 50])


def test_rows_have_static_widths_inside_tf_data():
  dataset = tf.data.Dataset.from_tensors(_batch(_TWO_USERS)).map(
      user_rows.expand_user_rows)
  assert {name: spec.shape.as_list()
          for name, spec in dataset.element_spec.items()} == {
              name: [None, *shape]
              for name, shape in user_rows.ROW_SHAPES.items()}


@pytest.mark.parametrize("history_length", [0, features.HISTORY_LENGTH + 1])
def test_rejects_a_history_length_out_of_range(history_length):
  with pytest.raises(ValueError, match="history_length"):
    user_rows.expand_user_rows(_batch(_TWO_USERS), history_length)
