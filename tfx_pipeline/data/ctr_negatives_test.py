"""Tests for the CTR negatives of `examples.build_rows`."""

from __future__ import annotations

import collections

import pandas as pd

from tfx_pipeline.data import contract
from tfx_pipeline.data import examples
from transforms import features


def _dataset():
  rows = [("a", "i1", 1), ("a", "i2", 2), ("a", "i3", 3),
          ("b", "i1", 1), ("b", "i4", 2), ("b", "i5", 3),
          ("c", "i1", 1), ("c", "i2", 2), ("c", "i6", 3)]
  interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
  interactions["label"] = 1.0
  interactions["event"] = ""
  interactions["item_type"] = "item"
  interactions["query"] = ""
  items = contract.normalize_items(pd.DataFrame({
      "item_id": [f"i{k}" for k in range(1, 7)],
      "title": [f"title {k}" for k in range(1, 7)], "category": ["x"] * 6}))
  return contract.Dataset(interactions=interactions, items=items)


def test_default_writes_positives_only():
  rows = examples.build_rows(_dataset())
  assert {row[features.LABEL] for row in rows.train + rows.eval} == {1.0}


def test_negatives_copy_the_positive_context_with_unseen_popular_items():
  rows = examples.build_rows(_dataset(), ctr_negatives=4, negative_seed=3)
  positives_by_user = collections.defaultdict(set)
  for row in rows.train + rows.eval:
    if row[features.LABEL] == 1.0:
      positives_by_user[row[features.USER_ID]].add(row[features.ITEM_ID])
  for split in (rows.train, rows.eval):
    positives = [row for row in split if row[features.LABEL] == 1.0]
    negatives = [row for row in split if row[features.LABEL] == 0.0]
    assert len(negatives) == 4 * len(positives)
    for row in negatives:
      assert row[features.ITEM_ID] not in positives_by_user[row[features.USER_ID]]
      assert row[features.ITEM_TITLE] == f"title {row[features.ITEM_ID][1:]}"
      same_context = [p for p in positives
                      if p[features.USER_ID] == row[features.USER_ID]
                      and p[features.TIMESTAMP] == row[features.TIMESTAMP]
                      and p[features.HISTORY_ITEM_IDS] == row[features.HISTORY_ITEM_IDS]]
      assert same_context
  # Negatives come from train-split positives only: i3, i5, i6 are eval-only.
  sampled = {row[features.ITEM_ID] for row in rows.train + rows.eval
             if row[features.LABEL] == 0.0}
  assert sampled <= {"i1", "i2", "i4"}


def test_negatives_are_reproducible():
  first = examples.build_rows(_dataset(), ctr_negatives=2, negative_seed=5)
  second = examples.build_rows(_dataset(), ctr_negatives=2, negative_seed=5)
  assert first == second


def test_each_positive_is_followed_by_its_negatives():
  rows = examples.build_rows(_dataset(), ctr_negatives=2, negative_seed=1)
  for split in (rows.train, rows.eval):
    labels = [row[features.LABEL] for row in split]
    assert labels == [1.0, 0.0, 0.0] * (len(split) // 3)
    for start in range(0, len(split), 3):
      assert {row[features.TIMESTAMP] for row in split[start:start + 3]} == {
          split[start][features.TIMESTAMP]}
