"""Tests of queries derived from item tokens."""

import numpy as np

from data import derived_queries

NUM_ITEMS = 12
# Item i has tokens (i % 8) + 1 and ((i + 3) % 8) + 1; item 0 is padding.
ITEM_TOKENS = np.zeros((NUM_ITEMS, 3), np.int64)
ITEM_TOKENS[1:, 0] = np.arange(1, NUM_ITEMS) % 8 + 1
ITEM_TOKENS[1:, 1] = (np.arange(1, NUM_ITEMS) + 3) % 8 + 1


def test_derived_queries_are_subsets_of_the_item_tokens():
  items = np.array([[3, 0], [5, 7]])
  queries = derived_queries.derive_queries(items, ITEM_TOKENS, num_keywords=1,
                                           seed=3)
  assert queries.shape == (2, 2, 1)
  assert queries[0, 1, 0] == 0, "padding interactions have empty queries"
  for item, query in ((3, queries[0, 0]), (5, queries[1, 0]),
                      (7, queries[1, 1])):
    assert set(query) <= set(ITEM_TOKENS[item]) - {0}
  both = derived_queries.derive_queries(np.array([3]), ITEM_TOKENS,
                                        num_keywords=4)
  assert sorted(both[0]) == [0, 0, 4, 7]


def test_derived_item_keywords_are_fixed_subsets_of_the_item_tokens():
  keywords = derived_queries.item_keywords(ITEM_TOKENS, num_keywords=1,
                                           width=4, seed=0)
  assert keywords.shape == (NUM_ITEMS, 4)
  np.testing.assert_array_equal(keywords[0], 0)
  np.testing.assert_array_equal(keywords[:, 1:], 0)
  for item in range(1, NUM_ITEMS):
    assert keywords[item, 0] in ITEM_TOKENS[item, :2]
  np.testing.assert_array_equal(
      keywords, derived_queries.item_keywords(ITEM_TOKENS, 1, 4, seed=0))


def test_the_seed_chooses_the_keywords():
  # Item 1 has tokens 2 and 5: over ten seeds both are chosen.
  chosen = {int(derived_queries.item_keywords(ITEM_TOKENS, 1, 1, seed)[1, 0])
            for seed in range(10)}
  assert chosen == {2, 5}
