"""Tests for regrouping per-interaction examples into per-user sequences."""

import numpy as np
import pytest

from data import features
from models import sequence_inputs


def _examples(rows, width=features.HISTORY_LENGTH):
  """Batch of examples from `(user, history, target, hour)` tuples.

  Every example has the same time, so only the histories can order them.
  """
  history = np.zeros([len(rows), width], np.int64)
  for row, (_, items, _, _) in enumerate(rows):
    history[row, :len(items)] = items
  return {
      features.USER_INDEX: np.array([user for user, _, _, _ in rows]),
      features.HISTORY_ITEM_INDICES: history,
      features.ITEM_INDEX: np.array([target for _, _, target, _ in rows]),
      features.HOUR_OF_DAY: np.array([hour for _, _, _, hour in rows]),
      features.DAY_OF_WEEK: np.zeros(len(rows), np.int64),
      features.TIMESTAMP_Z: np.zeros(len(rows), np.float32),
  }


def test_a_users_examples_become_one_sequence_in_history_order():
  # User 7 chose items 5, 9, 4 in that order; the file lists them shuffled,
  # with user 3's one example in between, split over two batches.
  first = _examples([(7, [5, 9], 4, 12), (3, [], 8, 1)])
  second = _examples([(7, [], 5, 10), (7, [5], 9, 11)])
  rows = sequence_inputs.read_sequence_rows([first, second])
  np.testing.assert_array_equal(rows.users, [7, 3, 7, 7])
  np.testing.assert_array_equal(rows.targets, [4, 8, 5, 9])
  np.testing.assert_array_equal(rows.positions, [2, 0, 0, 1])

  windows = sequence_inputs.windows(rows, np.ones(4, bool), length=4,
                                    every_window=True)
  # User 3 has no next item; user 7 reads 5, 9 and predicts 9, 4, with the
  # hour of the request that chose each target.
  np.testing.assert_array_equal(windows[features.HISTORY_ITEM_INDICES],
                                [[5, 9, 0, 0]])
  np.testing.assert_array_equal(windows[features.ITEM_INDEX], [[9, 4, 0, 0]])
  np.testing.assert_array_equal(windows[features.HOUR_OF_DAY],
                                [[11, 12, 0, 0]])


def test_capped_histories_chain_by_their_last_items():
  # A cap of 2: from the third example on, the oldest item drops out. The
  # sequence 1, 2, 1, 3, 2 repeats items, and the rows come in reverse.
  sequence = [1, 2, 1, 3, 2]
  examples = [(0, sequence[max(0, p - 2):p], item, p)
              for p, item in enumerate(sequence)][::-1]
  rows = sequence_inputs.read_sequence_rows([_examples(examples, width=4)])
  np.testing.assert_array_equal(rows.positions, [4, 3, 2, 1, 0])
  np.testing.assert_array_equal(rows.targets[np.argsort(rows.positions)],
                                sequence)


def test_windows_end_every_length_items_before_the_newest():
  sequence = list(range(1, 8))  # 7 items: targets 2..7.
  rows = sequence_inputs.read_sequence_rows([_examples(
      [(0, sequence[:p], item, p) for p, item in enumerate(sequence)])])
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


def test_an_example_continuing_no_history_is_refused():
  # User 1's example after [4] has no example with target 4 before it.
  with pytest.raises(ValueError, match="continue no history"):
    sequence_inputs.read_sequence_rows([_examples(
        [(1, [], 2, 0), (1, [4], 6, 0)])])
