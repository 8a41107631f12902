"""Tests of the pairs built from held-out behaviour events, known values."""

import numpy as np
import pandas as pd

from offline_eval import behaviour_pairs


def _events(rows):
  return pd.DataFrame(rows, columns=list(behaviour_pairs.EVENT_COLUMNS))


def test_conversion_pairs_are_viewed_pairs_labelled_by_a_buy():
  events = _events([
      (0, 5, "pv", 10), (0, 5, "pv", 11), (0, 5, "buy", 20),  # bought
      (0, 6, "pv", 12), (0, 6, "cart", 13),                   # not bought
      (0, 7, "buy", 14),                                      # never viewed
      (0, 1, "pv", 15), (0, 1, "buy", 16),                    # known item
      (1, 6, "pv", 17), (1, 5, "pv", 18),                     # user 0 bought 5
  ])
  known = [np.array([1, 2]), np.array([3])]
  pairs = behaviour_pairs.conversion_pairs(events, known)
  assert pairs.to_dict("list") == {"user_index": [0, 0, 1, 1],
                                   "item_index": [5, 6, 5, 6],
                                   "label": [1, 0, 0, 0]}
  carts = behaviour_pairs.conversion_pairs(events, known,
                                           conversion_event="cart")
  assert carts["label"].tolist() == [0, 1, 0, 0]


def test_session_pairs_join_consecutive_items_within_the_gap():
  events = _events([
      (0, 3, "pv", 100), (0, 1, "pv", 0), (0, 2, "pv", 60),  # 1-2, 2-3
      (0, 3, "pv", 160),                                     # same item
      (0, 4, "pv", 160 + 1801),                              # a new session
      (1, 4, "pv", 1961), (1, 2, "pv", 2000),                # 4-2 as (2, 4)
      (2, 2, "pv", 0), (2, 1, "pv", 5),                      # 2-1 again
  ])
  pairs = behaviour_pairs.session_pairs(events, max_gap_seconds=1800)
  np.testing.assert_array_equal(pairs, [[1, 2], [2, 3], [2, 4]])
  trained = np.array([False, True, True, False, True])
  np.testing.assert_array_equal(
      behaviour_pairs.session_pairs(events, 1800, items=trained),
      [[1, 2], [2, 4]])
  assert behaviour_pairs.session_pairs(events, 10).tolist() == [[1, 2]]
