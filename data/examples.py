"""Turns a contract `Dataset` into per-interaction training and eval rows.

Each row is one positive interaction (label >= 0.5) with the user's earlier
positives as history: their item ids and, aligned with them, the search
queries that led to them ("" where there was none). Exact duplicates (same
user, item and timestamp) count once. The split is by time, never random, and
follows one of two rules:

- `leave_last_out` (per user): for every user with more than `eval_holdout`
  positives, the newest `eval_holdout` positives are the eval split and
  everything before them is the train split. Users with too few positives
  stay entirely in train. Other users' later interactions are in train, so a
  model can learn from a future the eval user has not reached yet.
- `temporal` (global): one cut time for everybody, the `cut_quantile` of the
  positives' timestamps. Train is every positive before the cut; eval is each
  user's first positive at or after it, for users with at least one train
  positive (a user first seen after the cut has nothing to retrieve from).
  Later positives are in neither split. This is what a team that retrains
  nightly and serves tomorrow sees.

Every eval row also lists all the user's train items (`SEEN_ITEM_IDS`), which
evaluation never recommends back.

Slice buckets (user activity, item popularity) are computed from the train
split only, so that the eval split does not leak into them.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import AbstractSet

import numpy as np
import pandas as pd

from data import features

POSITIVE_THRESHOLD = 0.5

LEAVE_LAST_OUT = "leave_last_out"
TEMPORAL = "temporal"
SPLIT_RULES = (LEAVE_LAST_OUT, TEMPORAL)

USER_ACTIVITY_BUCKETS = ("light", "medium", "heavy")
ITEM_POPULARITY_BUCKETS = ("head", "torso", "tail", "unseen")


@dataclasses.dataclass(frozen=True)
class SplitRows:
  """Rows of both splits as lists of raw feature dicts."""
  train: list[dict]
  eval: list[dict]


def _item_side_info(items: pd.DataFrame | None) -> dict[str, tuple[str, list[str]]]:
  if items is None:
    return {}
  side_info = {}
  for item_id, title, category in zip(items["item_id"], items["title"],
                                      items["category"]):
    categories = [c for c in str(category).split("|") if c]
    side_info[str(item_id)] = (str(title), categories)
  return side_info


def _user_activity_buckets(train_counts: collections.Counter) -> dict[str, str]:
  """Assigns users to terciles of their train-split activity."""
  if not train_counts:
    return {}
  counts = np.array(list(train_counts.values()))
  low, high = np.quantile(counts, [1 / 3, 2 / 3])
  buckets = {}
  for user, count in train_counts.items():
    index = 0 if count <= low else (1 if count <= high else 2)
    buckets[user] = USER_ACTIVITY_BUCKETS[index]
  return buckets


def _item_popularity_buckets(train_counts: collections.Counter) -> dict[str, str]:
  """Head/torso/tail: the items that make up each third of train interactions."""
  total = sum(train_counts.values())
  buckets = {}
  cumulative = 0
  for item, count in train_counts.most_common():
    share = cumulative / total
    buckets[item] = ITEM_POPULARITY_BUCKETS[min(int(share * 3), 2)]
    cumulative += count
  return buckets


def sample_popular_negatives(rng: np.random.Generator, items: np.ndarray,
                             probability: np.ndarray, excluded: AbstractSet,
                             count: int) -> list:
  """`count` items drawn by popularity, none of them in `excluded`.

  Draws `count` items at a time from `items` with `probability` and keeps
  those not in `excluded`, until `count` are kept, so that popularity alone
  does not separate a user's positives from their negatives.

  Args:
    rng: the random generator; the draws depend only on it and the inputs.
    items: `[n]` candidate items (ids or indices).
    probability: `[n]` probability of drawing each item; sums to 1.
    excluded: the user's items, never drawn.
    count: how many negatives to return.

  Returns:
    `count` items in draw order (repeats possible), or no item when every
    item with a non-zero probability is excluded.
  """
  drawable = items[probability > 0]
  # The length test first: most users exclude far fewer items than exist.
  if len(excluded) >= len(drawable) and excluded.issuperset(drawable):
    return []
  sampled = []
  while len(sampled) < count:
    sampled.extend(item for item in items[rng.choice(len(items), size=count,
                                                    p=probability)]
                   if item not in excluded)
  return sampled[:count]


def _ctr_negative_rows(candidates: list[tuple[str, dict]], count: int, seed: int,
                       item_buckets: dict[str, str],
                       side_info: dict[str, tuple[str, list[str]]]
                       ) -> list[list[dict]]:
  """`count` label-0 copies of every positive row, for CTR ranking models.

  Returns one list per candidate row, in `candidates` order, so that callers
  can write each positive's negatives right after it: a file with every
  negative at the end would give a shuffle buffer batches of one label.

  Each copy keeps the positive's user, time and history and replaces the item
  with one the user never interacted with positively, drawn from the
  train-split popularity distribution (`sample_popular_negatives`), with a
  fixed seed.
  """
  train_counts = collections.Counter(
      row[features.ITEM_ID] for split, row in candidates if split == "train")
  items = np.array(sorted(train_counts))
  probability = np.array([train_counts[item] for item in items], np.float64)
  probability /= probability.sum()
  positives_by_user = collections.defaultdict(set)
  for _, row in candidates:
    positives_by_user[row[features.USER_ID]].add(row[features.ITEM_ID])
  rng = np.random.default_rng(seed)
  negatives = []
  for _, row in candidates:
    negatives.append([])
    for item_id in sample_popular_negatives(
        rng, items, probability, positives_by_user[row[features.USER_ID]],
        count):
      title, categories = side_info.get(item_id, ("", []))
      negatives[-1].append({
          **row, features.ITEM_ID: item_id, features.LABEL: 0.0,
          features.ITEM_TITLE: title, features.ITEM_CATEGORIES: categories,
          features.ITEM_POPULARITY_BUCKET: item_buckets.get(item_id, "unseen")})
  return negatives


def temporal_cut(timestamps: np.ndarray, cut_quantile: float) -> int:
  """The global split time: the `cut_quantile` of `timestamps`.

  Raises:
    ValueError: if `cut_quantile` is not in (0, 1).
  """
  if not 0.0 < cut_quantile < 1.0:
    raise ValueError(f"temporal_cut_quantile must be in (0, 1), got {cut_quantile}")
  return int(np.quantile(np.asarray(timestamps), cut_quantile, method="higher"))


def _split_positions(timestamps: np.ndarray, split: str, eval_holdout: int,
                     cut: int | None) -> tuple[int, range]:
  """One user's split over their time-ordered positives.

  Returns:
    `(n_train, eval_positions)`: positions `[0, n_train)` are train,
    `eval_positions` are eval, any others are in neither split.
  """
  count = len(timestamps)
  if split == LEAVE_LAST_OUT:
    n_train = count - eval_holdout if count > eval_holdout else count
    return n_train, range(n_train, count)
  # Sorted by time, so the train positives are a prefix.
  n_train = int(np.searchsorted(timestamps, cut, side="left"))
  if n_train == 0 or n_train == count:
    return n_train, range(0)
  return n_train, range(n_train, n_train + 1)


def build_rows(dataset, eval_holdout: int = 1,
               history_length: int = features.HISTORY_LENGTH,
               ctr_negatives: int = 0, negative_seed: int = 0,
               split: str = LEAVE_LAST_OUT,
               temporal_cut_quantile: float = 0.9) -> SplitRows:
  """Builds the train and eval rows of a dataset.

  Args:
    dataset: a validated `data.contract.Dataset`.
    eval_holdout: under `leave_last_out`, how many of each user's newest
      positives go to eval.
    history_length: cap on the history, keeping the most recent items.
    ctr_negatives: sampled label-0 rows per positive row, in both splits,
      for CTR ranking families (see `_ctr_negative_rows`); 0 = positives only.
    negative_seed: seed of the negative sampling.
    split: `leave_last_out` or `temporal` (see the module docstring).
    temporal_cut_quantile: under `temporal`, the quantile of the positives'
      timestamps where train ends.

  Returns:
    The rows of both splits.

  Raises:
    ValueError: if the dataset has no positive interaction, or the split
      leaves the eval split empty, or an argument is out of range.
  """
  if split not in SPLIT_RULES:
    raise ValueError(f"unknown split {split!r}; use one of {SPLIT_RULES}")
  if eval_holdout < 1:
    raise ValueError(f"eval_holdout must be >= 1, got {eval_holdout}")
  if not 0 < history_length <= features.HISTORY_LENGTH:
    raise ValueError(f"history_length must be in [1, {features.HISTORY_LENGTH}],"
                     f" got {history_length}")
  interactions = dataset.interactions
  positives = interactions[interactions["label"] >= POSITIVE_THRESHOLD]
  if positives.empty:
    raise ValueError("the interaction log has no positive interaction "
                     f"(label >= {POSITIVE_THRESHOLD}); nothing to train on")
  # An exact repeat (same user, item and second) is a logging duplicate, not
  # a second interaction; kept, it would put an eval target in its own history.
  positives = positives.drop_duplicates(["user_id", "item_id", "timestamp"])
  # A stable sort keeps the file order of same-second events, so history is
  # deterministic.
  positives = positives.sort_values(["user_id", "timestamp"], kind="stable")
  side_info = _item_side_info(dataset.items)
  cut = (temporal_cut(positives["timestamp"].to_numpy(), temporal_cut_quantile)
         if split == TEMPORAL else None)

  candidates = []  # (split, row) before slice buckets are known.
  for user_id, group in positives.groupby("user_id", sort=False):
    item_ids = group["item_id"].tolist()
    queries = group["query"].tolist()
    item_types = group["item_type"].tolist()
    timestamps = group["timestamp"].to_numpy()
    n_train, eval_positions = _split_positions(timestamps, split, eval_holdout,
                                               cut)
    seen = list(dict.fromkeys(item_ids[:n_train]))
    for position in [*range(n_train), *eval_positions]:
      item_id, query = item_ids[position], queries[position]
      is_eval = position >= n_train
      history = slice(max(0, position - history_length), position)
      title, categories = side_info.get(item_id, ("", []))
      row = {
          features.USER_ID: user_id,
          features.ITEM_ID: item_id,
          features.TIMESTAMP: int(timestamps[position]),
          features.LABEL: 1.0,
          features.ITEM_TYPE: item_types[position] or "item",
          features.QUERY: query,
          features.ITEM_TITLE: title,
          features.ITEM_CATEGORIES: categories,
          features.HISTORY_ITEM_IDS: item_ids[history],
          features.HISTORY_QUERIES: queries[history],
          features.SEEN_ITEM_IDS: seen if is_eval else [],
      }
      candidates.append(("eval" if is_eval else "train", row))

  train_rows = [row for split, row in candidates if split == "train"]
  eval_rows = [row for split, row in candidates if split == "eval"]
  if not eval_rows:
    reason = (f"no user has more than {eval_holdout} positive interactions"
              if split == LEAVE_LAST_OUT else
              f"no user has positives both before and after the temporal cut "
              f"(quantile {temporal_cut_quantile}, timestamp {cut})")
    raise ValueError(f"{reason}, so the time-based eval split would be empty")

  user_buckets = _user_activity_buckets(
      collections.Counter(row[features.USER_ID] for row in train_rows))
  item_buckets = _item_popularity_buckets(
      collections.Counter(row[features.ITEM_ID] for row in train_rows))
  for _, row in candidates:
    row[features.USER_ACTIVITY_BUCKET] = user_buckets.get(
        row[features.USER_ID], USER_ACTIVITY_BUCKETS[0])
    row[features.ITEM_POPULARITY_BUCKET] = item_buckets.get(
        row[features.ITEM_ID], "unseen")
  if ctr_negatives > 0:
    negatives = _ctr_negative_rows(candidates, ctr_negatives, negative_seed,
                                   item_buckets, side_info)
    train_rows, eval_rows = [], []
    for (split, row), row_negatives in zip(candidates, negatives):
      (train_rows if split == "train" else eval_rows).extend([row] + row_negatives)
  return SplitRows(train=train_rows, eval=eval_rows)
