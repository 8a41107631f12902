"""The long-history CTR task of `benchmarks.seminar_long`, from an event log.

Built from a contract dataset with timestamps (the Taobao UserBehavior
sample: every event a positive, items with one category each):

- a time-ordered split by calendar day: the events of the last
  `test_days` days are test targets, those of the `valid_days` days before
  them validation targets, those of the `train_days` days before them train
  targets (all earlier days if None); every target reads the user's events
  before it (any day) as its history, the most recent `history_length`;
- `negatives` negatives per positive, drawn from the items with events on
  the positive's day, by that day's popularity, never an item of the user's
  (`example_rows.sample_popular_negatives`); a negative shares its
  positive's history;
- each history item's pseudo-query is its category: the logs have no search
  queries, so the category (Taobao: an id; H&M: the article's index group,
  product group, product type and department names) is the query, and the
  item's text is its category and the words of its title where the items
  table has one (H&M: 4,116 of the 17,033 articles; Taobao: none);
- the SEMINAR PSU's pre-training windows: each user's train-day events cut
  into windows of `window_length + 1` from the newest back, overlapping by
  one (as `seminar_data.SeminarData`).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from data import contract
from data import example_rows
from data import importers
from models.seminar import ctr_ranker
from models.seminar import item_features
from offline_eval import datasets

SECONDS_PER_DAY = 86_400
# Title words kept per item, and the fewest items a kept word must name.
MAX_TITLE_WORDS = 8
MIN_ITEMS_PER_WORD = 2
_WORD = re.compile(r"[a-z0-9]+")
# Logs that write a row per unit bought, not per event.
UNIT_ROW_LOGS = ("hm-fashion",)


@dataclasses.dataclass
class LongHistoryCtr:
  """Indexed items and the CTR examples of every split.

  Attributes:
    item_categories: `[num_items]` category index per item (0 at padding).
    category_names: category index -> raw category; "" at 0.
    splits: "train", "valid", "test" -> examples (`ctr_ranker` feature
      names, plus `user`, the user index of each example).
    windows: the PSU's windows, `items` and `keywords` `[W, window + 1]`
      (`keywords` with a last axis of one keyword).
    item_ids: item index -> raw item id; "" at 0.
    item_words: `[num_items, W]` title word indices, 0-padded (`W` is 0
      where no item has a title).
    word_names: word index -> word; "" at 0.
  """
  item_categories: np.ndarray
  category_names: list[str]
  splits: dict[str, dict[str, np.ndarray]]
  windows: dict[str, np.ndarray]
  item_ids: list[str]
  item_words: np.ndarray
  word_names: list[str]

  @property
  def num_items(self) -> int:
    return len(self.item_categories)

  @property
  def item_tokens(self) -> np.ndarray:
    """`[num_items, 1 + W]` every item's text tokens, SEMINAR's text view:
    its category, then its title words, in one vocabulary (`num_tokens`)
    whose first entries are the categories, so that the category
    pseudo-queries index it too."""
    words = np.where(self.item_words > 0,
                     self.item_words + len(self.category_names) - 1, 0)
    return np.concatenate([self.item_categories[:, np.newaxis], words], 1)

  @property
  def num_tokens(self) -> int:
    return len(self.category_names) + len(self.word_names) - 1

  def catalogue(self, image_vectors: np.ndarray | None = None
                ) -> item_features.ItemFeatures:
    """The baselines' item features: the same as SEMINAR's views."""
    return item_features.ItemFeatures(
        self.item_categories, len(self.category_names), self.item_words,
        len(self.word_names), image_vectors)


def load(name: str, source_root) -> contract.Dataset:
  """A dataset's log as the task reads it.

  H&M writes one row per unit bought: the repeats of an article bought by
  one customer on one day become one event (purchases carry a date only).
  Other logs' rows are events and are kept.
  """
  dataset = importers.IMPORTERS[name](source_root)
  if name not in UNIT_ROW_LOGS:
    return dataset
  return contract.Dataset(
      dataset.interactions.drop_duplicates(
          ["user_id", "item_id", "timestamp"]), dataset.items, dataset.users)


def _index(values: pd.Series) -> tuple[np.ndarray, list[str]]:
  names = [""] + sorted(set(values.unique()) - {""})
  index = {name: position for position, name in enumerate(names)}
  return values.map(index).to_numpy(np.int64), names


def build(dataset: contract.Dataset, history_length: int, negatives: int,
          valid_days: int = 1, test_days: int = 1,
          train_days: int | None = None, window_length: int = 50,
          seed: int = 0) -> LongHistoryCtr:
  """The split CTR examples and PSU windows of an event log.

  Args:
    dataset: interactions with `timestamp`; items with one `category` each
      (items without a row in `items` get category 0).
    history_length: most recent history items per example.
    negatives: sampled negatives per positive.
    valid_days: last days before the test days that hold validation targets.
    test_days: last days that hold test targets.
    train_days: days before the validation days that hold train targets;
      None: every earlier day. Earlier days are history only (and PSU
      windows).
    window_length: history positions of a PSU window.
    seed: seeds the negatives.

  Returns:
    The task.
  """
  events = dataset.interactions.sort_values(["user_id", "timestamp"],
                                            kind="stable")
  item_names = sorted(events["item_id"].unique())
  item_index = {item: position + 1 for position, item in enumerate(item_names)}
  categories = pd.Series("", index=[""] + item_names, dtype=object)
  if dataset.items is not None:
    known = dataset.items.set_index("item_id")["category"]
    categories.update(known[known.index.isin(item_index)])
  item_categories, category_names = _index(categories)
  titles = pd.Series("", index=[""] + item_names, dtype=object)
  if dataset.items is not None:
    known = dataset.items.set_index("item_id")["title"]
    titles.update(known[known.index.isin(item_index)])
  item_words, word_names = _title_words(titles)
  frame = pd.DataFrame({
      "user": _index(events["user_id"])[0] - 1,
      "item": events["item_id"].map(item_index).to_numpy(np.int64),
      "day": ((events["timestamp"] - events["timestamp"].min())
              // SECONDS_PER_DAY).to_numpy(np.int64)})
  last_day = int(frame["day"].max())
  first_test, first_valid = (last_day + 1 - test_days,
                             last_day + 1 - test_days - valid_days)
  first_train = (0 if train_days is None else first_valid - train_days)
  # -1: history only.
  split_of_day = np.select(
      [frame["day"] >= first_test, frame["day"] >= first_valid,
       frame["day"] >= first_train], [2, 1, 0], -1)
  negative_items = _negatives(frame, negatives, seed)
  rows = {name: {key: [] for key in ("history", "candidate", "label", "user")}
          for name in ("train", "valid", "test")}
  windows = []
  for user, positions in frame.groupby("user").indices.items():
    sequence = frame["item"].to_numpy()[positions]
    splits = split_of_day[positions]
    for position in range(1, len(sequence)):
      if splits[position] < 0:
        continue
      split = rows[("train", "valid", "test")[splits[position]]]
      history = sequence[max(0, position - history_length):position]
      for candidate, label in ([(sequence[position], 1)] +
                               [(item, 0) for item in
                                negative_items[positions[position]]]):
        split["history"].append(history)
        split["candidate"].append(candidate)
        split["label"].append(label)
        split["user"].append(user)
    windows.extend(_windows(sequence[splits <= 0], window_length))
  return LongHistoryCtr(
      item_categories, category_names,
      {name: _examples(split, history_length, item_categories)
       for name, split in rows.items()},
      {ctr_ranker.HISTORY: _padded(windows, window_length + 1),
       ctr_ranker.KEYWORDS: item_categories[
           _padded(windows, window_length + 1)][..., np.newaxis]},
      [""] + item_names, item_words, word_names)


def _title_words(titles: pd.Series) -> tuple[np.ndarray, list[str]]:
  """`[len(titles), W]` each title's first `MAX_TITLE_WORDS` distinct words
  that `MIN_ITEMS_PER_WORD` or more titles hold, and the word names. `W` is
  the most words any title keeps (0 where none does)."""
  words, names = datasets.token_matrix(
      {row: _WORD.findall(str(title).lower())
       for row, title in enumerate(titles)}, len(titles),
      min_items=MIN_ITEMS_PER_WORD, max_tokens=MAX_TITLE_WORDS)
  width = int(np.count_nonzero(words, axis=1).max(initial=0))
  return words[:, :width], names


def _negatives(frame: pd.DataFrame, negatives: int, seed: int) -> list[list[int]]:
  """Per event row, `negatives` items of its day drawn by that day's
  popularity, none of the user's."""
  rng = np.random.default_rng(seed)
  user_items = frame.groupby("user")["item"].agg(set)
  drawn: list[list[int]] = [[] for _ in range(len(frame))]
  for day, day_rows in frame.groupby("day"):
    counts = day_rows["item"].value_counts()
    items = counts.index.to_numpy()
    probability = counts.to_numpy(np.float64) / counts.sum()
    for user, user_rows in day_rows.groupby("user").indices.items():
      sampled = example_rows.sample_popular_negatives(
          rng, items, probability, user_items[user],
          negatives * len(user_rows))
      for offset, row in enumerate(day_rows.index[user_rows]):
        drawn[row] = list(sampled[offset * negatives:(offset + 1) * negatives])
  return drawn


def _windows(sequence: np.ndarray, window_length: int) -> list[np.ndarray]:
  """`window_length + 1` items from the newest back, overlapping by one, so
  that every item but the first is a next-pair target once."""
  windows, end = [], len(sequence)
  while end >= 2:
    start = max(0, end - window_length - 1)
    windows.append(sequence[start:end])
    end = start + 1 if start else 0
  return windows


def _padded(rows: list[np.ndarray], width: int) -> np.ndarray:
  """Right-padded `[len(rows), width]` int32 (the int64 of so many long
  histories would double the task's memory)."""
  padded = np.zeros((len(rows), width), np.int32)
  for row, values in enumerate(rows):
    padded[row, :len(values)] = values
  return padded


def _examples(rows: dict[str, list], history_length: int,
              item_categories: np.ndarray) -> dict[str, np.ndarray]:
  history = _padded(rows["history"], history_length)
  return {ctr_ranker.HISTORY: history,
          ctr_ranker.KEYWORDS: item_categories[history].astype(
              np.int32)[..., np.newaxis],
          ctr_ranker.CANDIDATE: np.asarray(rows["candidate"], np.int32),
          ctr_ranker.LABEL: np.asarray(rows["label"], np.float32),
          "user": np.asarray(rows["user"], np.int32)}
