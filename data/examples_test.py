"""Tests for the time-based split, history building and CTR negatives."""

import collections

import numpy as np
import pandas as pd
import pytest

from data import contract
from data import examples
from data import features
from data import global_passes
from data import user_sequences


def _dataset(rows, items=None):
  interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp",
                                             "label"])
  interactions["event"] = ""
  interactions["item_type"] = "item"
  interactions["query"] = ""
  interactions["timestamp"] = interactions["timestamp"].astype("int64")
  interactions["label"] = interactions["label"].astype(float)
  return contract.Dataset(interactions=interactions, items=items)


def test_newest_positives_per_user_go_to_eval_not_random():
  # Rows are deliberately out of time order.
  dataset = _dataset([
      ("a", "i3", 30, 1), ("a", "i1", 10, 1), ("a", "i2", 20, 1),
      ("a", "i9", 40, 0),  # a negative is never a target
      ("b", "i2", 5, 1), ("b", "i1", 50, 1),
      ("c", "i1", 7, 1),  # one positive: cannot hold out, stays in train
  ])
  rows = examples.build_rows(dataset, eval_holdout=1)
  eval_targets = {(r[features.USER_ID], r[features.ITEM_ID]) for r in rows.eval}
  assert eval_targets == {("a", "i3"), ("b", "i1")}
  train_targets = sorted((r[features.USER_ID], r[features.ITEM_ID])
                         for r in rows.train)
  assert train_targets == [("a", "i1"), ("a", "i2"), ("b", "i2"), ("c", "i1")]
  for row in rows.eval:
    assert all(row[features.TIMESTAMP] >= r[features.TIMESTAMP]
               for r in rows.train if r[features.USER_ID] == row[features.USER_ID])


def test_history_is_earlier_positives_oldest_first_and_capped():
  dataset = _dataset([("a", f"i{t}", t, 1) for t in range(6)])
  rows = examples.build_rows(dataset, eval_holdout=1, history_length=3)
  by_target = {r[features.ITEM_ID]: r[features.HISTORY_ITEM_IDS]
               for r in rows.train + rows.eval}
  assert by_target["i0"] == []
  assert by_target["i2"] == ["i0", "i1"]
  assert by_target["i5"] == ["i2", "i3", "i4"]


def test_history_queries_are_aligned_with_history_items_and_capped():
  # Out of time order; the negative's query never enters a history.
  dataset = _dataset([("a", "i3", 3, 1), ("a", "i1", 1, 1), ("a", "i9", 2, 0),
                      ("a", "i2", 2, 1), ("a", "i4", 4, 1)])
  dataset.interactions["query"] = ["red apples", "", "never", "green tea", ""]
  rows = examples.build_rows(dataset, eval_holdout=1, history_length=2)
  by_target = {r[features.ITEM_ID]: (r[features.HISTORY_ITEM_IDS],
                                     r[features.HISTORY_QUERIES],
                                     r[features.QUERY])
               for r in rows.train + rows.eval}
  assert by_target["i1"] == ([], [], "")
  assert by_target["i2"] == (["i1"], [""], "green tea")
  assert by_target["i3"] == (["i1", "i2"], ["", "green tea"], "red apples")
  assert by_target["i4"] == (["i2", "i3"], ["green tea", "red apples"], "")


def test_side_info_and_slice_buckets_are_attached():
  items = contract.normalize_items(pd.DataFrame({
      "item_id": ["i1", "i2"], "title": ["Toy Story", ""],
      "category": ["Animation|Comedy", ""]}))
  dataset = _dataset([("a", "i1", 1, 1), ("a", "i2", 2, 1),
                      ("b", "i1", 1, 1), ("b", "i3", 2, 1)], items=items)
  rows = examples.build_rows(dataset)
  first = next(r for r in rows.train if r[features.ITEM_ID] == "i1")
  assert first[features.ITEM_TITLE] == "Toy Story"
  assert first[features.ITEM_CATEGORIES] == ["Animation", "Comedy"]
  unseen = next(r for r in rows.eval if r[features.ITEM_ID] == "i3")
  assert unseen[features.ITEM_TITLE] == ""
  assert unseen[features.ITEM_POPULARITY_BUCKET] == "unseen"
  assert first[features.ITEM_POPULARITY_BUCKET] == "head"
  assert {r[features.USER_ACTIVITY_BUCKET] for r in rows.train} <= set(
      global_passes.USER_ACTIVITY_BUCKETS)


@pytest.mark.parametrize("rows, message", [
    ([("a", "i1", 1, 0)], "no positive"),
    ([("a", "i1", 1, 1), ("b", "i2", 1, 1)], "eval split would be empty"),
])
def test_unusable_logs_are_rejected(rows, message):
  with pytest.raises(ValueError, match=message):
    examples.build_rows(_dataset(rows))


def _ctr_dataset():
  rows = [("a", "i1", 1), ("a", "i2", 2), ("a", "i3", 3),
          ("b", "i1", 1), ("b", "i4", 2), ("b", "i5", 3),
          ("c", "i1", 1), ("c", "i2", 2), ("c", "i6", 3)]
  items = contract.normalize_items(pd.DataFrame({
      "item_id": [f"i{k}" for k in range(1, 7)],
      "title": [f"title {k}" for k in range(1, 7)], "category": ["x"] * 6}))
  return _dataset([(*row, 1.0) for row in rows], items=items)


def test_the_train_split_is_stored_once_per_user_with_each_positive_once():
  dataset = _dataset([("a", f"i{t}", t, 1) for t in range(6)] +
                     [("b", "x1", 3, 1)])
  stored = examples.build_examples(dataset, ctr_negatives=2, negative_seed=3,
                                   history_length=2)
  by_user = {row[features.USER_ID]: row for row in stored.train}
  assert len(stored.train) == 2
  # a: i0..i4 in train (i5 held out), the newest as the example's own item
  # and every earlier one as history, uncapped, each with its own time.
  assert by_user["a"][features.ITEM_ID] == "i4"
  assert by_user["a"][features.HISTORY_ITEM_IDS] == ["i0", "i1", "i2", "i3"]
  assert by_user["a"][features.HISTORY_TIMESTAMPS] == [0, 1, 2, 3]
  # Two negatives per positive, drawn from the only item a never had.
  assert by_user["a"][features.NEGATIVE_ITEM_IDS] == ["x1"] * 2 * 5
  assert by_user["b"][features.HISTORY_ITEM_IDS] == []
  # Expanded, they are the per-interaction rows, histories capped.
  rows = examples.build_rows(dataset, ctr_negatives=2, negative_seed=3,
                             history_length=2)
  assert len(rows.train) == 3 * 6
  assert [row[features.HISTORY_ITEM_IDS] for row in rows.train
          if row[features.USER_ID] == "a" and row[features.LABEL] == 1.0] == [
              [], ["i0"], ["i0", "i1"], ["i1", "i2"], ["i2", "i3"]]
  assert stored.eval == rows.eval


def test_default_writes_positives_only():
  rows = examples.build_rows(_ctr_dataset())
  assert {row[features.LABEL] for row in rows.train + rows.eval} == {1.0}


def test_negatives_copy_the_positive_context_with_unseen_popular_items():
  rows = examples.build_rows(_ctr_dataset(), ctr_negatives=4, negative_seed=3)
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
                      and p[features.HISTORY_ITEM_IDS] == row[features.HISTORY_ITEM_IDS]
                      and p[features.HISTORY_QUERIES] == row[features.HISTORY_QUERIES]]
      assert same_context
  # Negatives come from train-split positives only: i3, i5, i6 are eval-only.
  sampled = {row[features.ITEM_ID] for row in rows.train + rows.eval
             if row[features.LABEL] == 0.0}
  assert sampled <= {"i1", "i2", "i4"}


def test_negatives_are_reproducible():
  first = examples.build_rows(_ctr_dataset(), ctr_negatives=2, negative_seed=5)
  second = examples.build_rows(_ctr_dataset(), ctr_negatives=2, negative_seed=5)
  assert first == second


def test_each_positive_is_followed_by_its_negatives():
  rows = examples.build_rows(_ctr_dataset(), ctr_negatives=2, negative_seed=1)
  for split in (rows.train, rows.eval):
    labels = [row[features.LABEL] for row in split]
    assert labels == [1.0, 0.0, 0.0] * (len(split) // 3)
    for start in range(0, len(split), 3):
      assert {row[features.TIMESTAMP] for row in split[start:start + 3]} == {
          split[start][features.TIMESTAMP]}


def test_eval_rows_list_every_train_item_beyond_the_history_cap():
  dataset = _dataset([("a", f"i{t % 4}", t, 1) for t in range(6)] +
                     [("a", "new", 9, 1)])
  rows = examples.build_rows(dataset, history_length=2)
  (eval_row,) = rows.eval
  assert eval_row[features.HISTORY_ITEM_IDS] == ["i0", "i1"]
  # Unique, in first-seen order; the repeats of i0 and i1 count once.
  assert eval_row[features.SEEN_ITEM_IDS] == ["i0", "i1", "i2", "i3"]
  assert all(row[features.SEEN_ITEM_IDS] == [] for row in rows.train)


def test_temporal_split_cuts_everyone_at_one_time():
  dataset = _dataset([
      ("a", "i1", 10, 1), ("a", "i2", 20, 1), ("a", "i3", 80, 1),
      ("a", "i4", 90, 1),  # after a's first post-cut positive: in no split
      ("b", "i1", 70, 1), ("b", "i5", 75, 1),  # both before the cut
      ("c", "i2", 85, 1),  # first seen after the cut: nothing to retrieve from
      ("d", "i3", 30, 1), ("d", "i9", 78, 0), ("d", "i2", 79, 1),
  ])
  # The 0.6 quantile of the 9 positive times, rounded up to a real time.
  cut = global_passes.temporal_cut(
      np.array([10, 20, 80, 90, 70, 75, 85, 30, 79]), 0.6)
  assert cut == 79
  rows = examples.build_rows(dataset, split=user_sequences.TEMPORAL,
                             temporal_cut_quantile=0.6)
  assert sorted((r[features.USER_ID], r[features.ITEM_ID]) for r in rows.train) == [
      ("a", "i1"), ("a", "i2"), ("b", "i1"), ("b", "i5"), ("d", "i3")]
  assert sorted((r[features.USER_ID], r[features.ITEM_ID],
                 tuple(r[features.SEEN_ITEM_IDS])) for r in rows.eval) == [
      ("a", "i3", ("i1", "i2")), ("d", "i2", ("i3",))]
  # Also under leave-last-out, b's newest positive would be eval: not here.
  assert max(r[features.TIMESTAMP] for r in rows.train) < cut
  assert min(r[features.TIMESTAMP] for r in rows.eval) >= cut


def test_temporal_split_rejects_a_cut_no_user_spans():
  # a is all before the cut (t=20), b all after it.
  dataset = _dataset([("a", "i1", 10, 1), ("a", "i2", 15, 1), ("b", "i2", 20, 1)])
  with pytest.raises(ValueError, match="temporal cut"):
    examples.build_rows(dataset, split=user_sequences.TEMPORAL,
                        temporal_cut_quantile=0.9)
  with pytest.raises(ValueError, match="unknown split"):
    examples.build_rows(dataset, split="random")


def test_eval_max_users_keeps_a_seeded_sample_of_eval_users_and_all_train():
  dataset = _dataset([(f"u{u}", f"i{t}", t, 1) for u in range(30)
                      for t in range(3)])
  full = examples.build_rows(dataset)
  sampled = examples.build_rows(dataset, eval_max_users=7, negative_seed=4)
  again = examples.build_rows(dataset, eval_max_users=7, negative_seed=4)
  other_seed = examples.build_rows(dataset, eval_max_users=7, negative_seed=5)
  users = {row[features.USER_ID] for row in sampled.eval}
  assert len(users) == 7 and len(sampled.eval) == 7
  assert sampled.train == full.train
  assert sampled == again
  assert users != {row[features.USER_ID] for row in other_seed.eval}
  assert examples.build_rows(dataset, eval_max_users=100).eval == full.eval
