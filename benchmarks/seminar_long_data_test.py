"""Tests for the long-history CTR task's split, negatives and windows."""

import numpy as np
import pandas as pd

from benchmarks import seminar_long_data
from data import contract
from models.seminar import ctr_ranker

DAY = seminar_long_data.SECONDS_PER_DAY


def tiny_log() -> contract.Dataset:
  """Two users over four days; items a-f, categories x (a, b, c) and y."""
  events = [("u1", "a", 0), ("u1", "f", 0), ("u1", "b", 1), ("u1", "c", 2), ("u1", "d", 3),
            ("u2", "e", 0), ("u2", "a", 2), ("u2", "f", 2), ("u2", "c", 3),
            ("u2", "e", 3)]
  interactions = pd.DataFrame(
      [(user, item, 1_000 + day * DAY + rank, 1.0)
       for rank, (user, item, day) in enumerate(events)],
      columns=["user_id", "item_id", "timestamp", "label"])
  items = pd.DataFrame({"item_id": list("abcdef"),
                        "category": ["x", "x", "x", "y", "y", "y"]})
  return contract.Dataset(contract.normalize_interactions(interactions),
                          contract.normalize_items(items))


def names(indices) -> str:
  return "".join(" abcdef"[index] for index in indices if index)


def test_targets_split_by_day_and_read_the_most_recent_earlier_events():
  task = seminar_long_data.build(tiny_log(), history_length=2, negatives=1,
                                 train_days=1, window_length=3)
  positives = {split: examples[ctr_ranker.LABEL] == 1
               for split, examples in task.splits.items()}
  test = task.splits["test"]
  assert names(test[ctr_ranker.CANDIDATE][positives["test"]]) == "dce"
  assert [names(history) for history in
          test[ctr_ranker.HISTORY][positives["test"]]] == ["bc", "af", "fc"]
  assert names(task.splits["valid"][ctr_ranker.CANDIDATE][
      positives["valid"]]) == "caf"
  # train_days=1: day 1 alone holds train targets; day 0 (u1's f) is
  # history only.
  assert names(task.splits["train"][ctr_ranker.CANDIDATE][
      positives["train"]]) == "b"
  np.testing.assert_array_equal(test["user"], [0, 0, 1, 1, 1, 1])
  assert task.item_ids == ["", *"abcdef"]
  # The pseudo-query of a history item is its category (x = 1, y = 2).
  np.testing.assert_array_equal(
      test[ctr_ranker.KEYWORDS][positives["test"]][..., 0],
      [[1, 1], [1, 2], [2, 1]])


def test_negatives_are_same_day_items_never_the_users():
  task = seminar_long_data.build(tiny_log(), history_length=3, negatives=1)
  test = task.splits["test"]
  # Day 3's items are d, c and e: u1 had every one but e, u2 every one but
  # d. Each negative follows its positive and shares its history.
  np.testing.assert_array_equal(test[ctr_ranker.LABEL], [1, 0, 1, 0, 1, 0])
  assert names(test[ctr_ranker.CANDIDATE]) == "decded"
  np.testing.assert_array_equal(test[ctr_ranker.HISTORY][0::2],
                                test[ctr_ranker.HISTORY][1::2])


def test_psu_windows_hold_the_events_before_validation():
  task = seminar_long_data.build(tiny_log(), history_length=2, negatives=1,
                                 train_days=1, window_length=3)
  # Days 0-1: u1's a, f, b; u2's single e makes no window.
  assert [names(window) for window in
          task.windows[ctr_ranker.HISTORY]] == ["afb"]
  np.testing.assert_array_equal(task.windows[ctr_ranker.KEYWORDS][..., 0],
                                [[1, 2, 1, 0]])


def test_item_text_is_the_category_then_the_shared_title_words():
  dataset = tiny_log()
  items = dataset.items.assign(title=["Red dress", "red Skirt, red", "Hat",
                                      "", "blue hat", "skirt"])
  task = seminar_long_data.build(contract.Dataset(dataset.interactions,
                                                  items), 4, 1)
  # Words named by two or more titles, each once per title.
  assert task.word_names == ["", "hat", "red", "skirt"]
  assert task.category_names == ["", "x", "y"]
  # Tokens: the categories 1-2, then the words 3-5.
  np.testing.assert_array_equal(task.item_tokens, [
      [0, 0, 0], [1, 4, 0], [1, 4, 5], [1, 3, 0], [2, 0, 0], [2, 3, 0],
      [2, 5, 0]])
  assert task.num_tokens == 6
  catalogue = task.catalogue()
  np.testing.assert_array_equal(catalogue.words, task.item_words)
  assert catalogue.num_words == 4 and catalogue.image_vectors is None


def test_a_log_without_titles_has_only_its_categories_as_text():
  task = seminar_long_data.build(tiny_log(), 4, 1)
  assert task.item_words.shape == (7, 0)
  np.testing.assert_array_equal(task.item_tokens[:, 0], task.item_categories)
  assert task.item_tokens.shape == (7, 1) and task.num_tokens == 3
