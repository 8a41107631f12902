"""Tests of what the SEMINAR Trainers read from the Transform output."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data import features
from models.seminar import inputs as seminar_inputs
from models.seminar.model_test import NUM_ITEMS


def _rows(*interactions):
  """Positive train examples from (user, item, history, timestamp, query,
  history queries), a history query per history item."""
  count = len(interactions)
  history = np.zeros((count, features.HISTORY_LENGTH), np.int64)
  queries = np.zeros((count, features.QUERY_LENGTH), np.int64)
  history_queries = np.zeros(
      (count, features.HISTORY_LENGTH, features.QUERY_LENGTH), np.int64)
  for row, (_, _, items, _, query, item_queries) in enumerate(interactions):
    history[row, :len(items)] = items
    queries[row, :len(query)] = query
    for position, item_query in enumerate(item_queries):
      history_queries[row, position, :len(item_query)] = item_query
  return {
      features.USER_INDEX: np.array([i[0] for i in interactions]),
      features.ITEM_INDEX: np.array([i[1] for i in interactions]),
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_LENGTH_FEATURE: np.array([len(i[2]) for i in interactions]),
      features.TIMESTAMP_Z: np.array([i[3] for i in interactions], np.float32),
      features.QUERY_TOKEN_INDICES: queries,
      features.HISTORY_QUERY_TOKEN_INDICES: history_queries.reshape(count, -1),
  }


def test_training_windows_chain_the_histories_and_prefer_real_queries():
  # User 1 picked 1..5 with histories capped at two items, in shuffled file
  # order, and searched [2, 4] before picking 4; user 2 picked 6 then 7
  # (with a search query); user 3 one item.
  rows = _rows((1, 3, [1, 2], 2.0, [], [[], []]),
               (2, 7, [6], 1.0, [8, 5], [[]]),
               (1, 5, [3, 4], 4.0, [], [[], [2, 4]]),
               (1, 1, [], 0.0, [], []),
               (1, 4, [2, 3], 3.0, [2, 4], [[], []]),
               (2, 6, [], 0.0, [], []),
               (1, 2, [1], 1.0, [], [[]]), (3, 9, [], 0.0, [], []))
  width = features.QUERY_LENGTH + 1
  derived = np.zeros((NUM_ITEMS, width), np.int64)
  derived[:, 0] = np.arange(NUM_ITEMS)
  windows = seminar_inputs.training_windows(rows, derived)
  items = windows["items"][:, :4]
  # Newest window first per user, then every second (the cap) before it.
  assert sorted(map(tuple, items)) == [(1, 2, 3, 0), (3, 4, 5, 0),
                                       (6, 7, 0, 0)]
  assert windows["items"].shape[1] == features.HISTORY_LENGTH + 1
  assert windows["keywords"].shape[1:] == (features.HISTORY_LENGTH + 1, width)
  keywords = {tuple(row_items): row_keywords[:3, :3] for row_items, row_keywords
              in zip(map(tuple, items), windows["keywords"])}
  # The target's own query, and a history item's query from the history.
  np.testing.assert_array_equal(keywords[(6, 7, 0, 0)],
                                [[6, 0, 0], [8, 5, 0], [0, 0, 0]])
  np.testing.assert_array_equal(keywords[(3, 4, 5, 0)],
                                [[3, 0, 0], [2, 4, 0], [5, 0, 0]])
  np.testing.assert_array_equal(keywords[(1, 2, 3, 0)][:, 0], [1, 2, 3])


def test_training_windows_without_queries_use_the_derived_ones():
  rows = _rows((1, 2, [1], 1.0, [], [[]]), (1, 3, [1, 2], 2.0, [], [[], []]))
  derived = np.arange(NUM_ITEMS * 8).reshape(NUM_ITEMS, 8)
  windows = seminar_inputs.training_windows(rows, derived)
  np.testing.assert_array_equal(windows["keywords"],
                                derived[windows["items"]])


def test_read_train_rows_keeps_every_positive_and_a_uniform_sample():
  labels = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0], np.float32)
  count = len(labels)
  rows = {
      features.LABEL: labels,
      features.USER_INDEX: np.arange(count),
      features.ITEM_INDEX: np.arange(count) + 100,
      features.HISTORY_ITEM_INDICES: np.arange(count)[:, np.newaxis] * [1, 1],
      features.HISTORY_LENGTH_FEATURE: np.ones(count, np.int64),
      features.TIMESTAMP_Z: np.zeros(count, np.float32),
      features.QUERY_TOKEN_INDICES: np.zeros((count, 2), np.int64),
      features.HISTORY_QUERY_TOKEN_INDICES: np.zeros((count, 2), np.int64),
  }
  dataset = tf.data.Dataset.from_tensor_slices(rows).batch(3)
  positives, sample = seminar_inputs.read_train_rows(dataset, sample_size=4,
                                                    seed=0)
  np.testing.assert_array_equal(positives[features.ITEM_INDEX],
                                [100, 103, 105, 108])
  assert len(sample[features.LABEL]) == 4
  sampled_items = sample[features.ITEM_INDEX]
  assert len(set(sampled_items)) == 4
  for item, label in zip(sampled_items, sample[features.LABEL]):
    assert labels[item - 100] == label
  _, everything = seminar_inputs.read_train_rows(dataset, sample_size=50,
                                                 seed=0)
  np.testing.assert_array_equal(everything[features.ITEM_INDEX],
                                np.arange(count) + 100)


def test_the_seed_draws_the_calibration_sample():
  count = 40
  rows = {name: np.zeros((count, 1), np.int64) for name in (
      features.HISTORY_ITEM_INDICES, features.QUERY_TOKEN_INDICES,
      features.HISTORY_QUERY_TOKEN_INDICES)}
  rows.update({features.LABEL: np.ones(count, np.float32),
               features.USER_INDEX: np.zeros(count, np.int64),
               features.ITEM_INDEX: np.arange(count),
               features.HISTORY_LENGTH_FEATURE: np.zeros(count, np.int64),
               features.TIMESTAMP_Z: np.zeros(count, np.float32)})
  dataset = tf.data.Dataset.from_tensor_slices(rows).batch(8)

  def sampled_items(seed):
    _, sample = seminar_inputs.read_train_rows(dataset, 5, seed)
    return tuple(sample[features.ITEM_INDEX])

  assert sampled_items(3) == sampled_items(3)
  assert len({sampled_items(seed) for seed in range(4)}) > 1
