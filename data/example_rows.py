"""Step 3 of `data.examples`: one user's final train and eval rows.

`finish_user_rows` turns a split `UserSequence` into raw feature dicts: each
positive with the item's side info and the user's earlier positives as
history, eval rows with every train item (`SEEN_ITEM_IDS`), the slice buckets
of `GlobalStats`, optional CTR negatives (drawn from an RNG seeded by the seed
and the user, so no global draw order exists) and the eval user sample.
"""

from __future__ import annotations

from typing import AbstractSet, Mapping

import numpy as np
import pandas as pd

from data import features
from data import global_passes
from data import user_sequences

# Title and categories of an item.
SideInfo = Mapping[str, tuple[str, list[str]]]


def item_side_info(items: pd.DataFrame | None) -> dict[str, tuple[str, list[str]]]:
  """Item id -> (title, categories) from a contract items table."""
  if items is None:
    return {}
  side_info = {}
  for item_id, title, category in zip(items["item_id"], items["title"],
                                      items["category"]):
    categories = [c for c in str(category).split("|") if c]
    side_info[str(item_id)] = (str(title), categories)
  return side_info


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


def user_rows(sequence: user_sequences.UserSequence, history_length: int,
              side_info: SideInfo) -> list[tuple[str, dict]]:
  """One user's `(split, row)` pairs, train then eval, without buckets."""
  seen = sequence.seen_item_ids()
  rows = []
  n_train = sequence.n_train
  for position in range(n_train + sequence.n_eval):
    item_id = sequence.item_ids[position]
    is_eval = position >= n_train
    history = slice(max(0, position - history_length), position)
    title, categories = side_info.get(item_id, ("", []))
    rows.append((user_sequences.EVAL if is_eval else user_sequences.TRAIN, {
        features.USER_ID: sequence.user_id,
        features.ITEM_ID: item_id,
        features.TIMESTAMP: int(sequence.timestamps[position]),
        features.LABEL: 1.0,
        features.ITEM_TYPE: sequence.item_types[position] or "item",
        features.QUERY: sequence.queries[position],
        features.ITEM_TITLE: title,
        features.ITEM_CATEGORIES: categories,
        features.HISTORY_ITEM_IDS: sequence.item_ids[history],
        features.HISTORY_QUERIES: sequence.queries[history],
        features.SEEN_ITEM_IDS: seen if is_eval else [],
    }))
  return rows


def _negative_rows(user_id: str, rows: list[tuple[str, dict]], count: int,
                   seed: int, stats: global_passes.GlobalStats,
                   side_info: SideInfo
                   ) -> list[list[dict]]:
  """`count` label-0 copies of each of one user's rows, for CTR rankers.

  Each copy keeps the positive's user, time and history and replaces the item
  with one the user never chose in either split, drawn from the train-split
  popularity (`sample_popular_negatives`) by an RNG seeded with `seed` and
  the user, so a user's negatives do not depend on any other user.
  """
  excluded = {row[features.ITEM_ID] for _, row in rows}
  rng = np.random.default_rng(
      [seed, global_passes.stable_hash("negatives", user_id)])
  negatives = []
  for _, row in rows:
    negatives.append([])
    for item_id in sample_popular_negatives(
        rng, stats.negative_items, stats.negative_probability, excluded, count):
      title, categories = side_info.get(item_id, ("", []))
      negatives[-1].append({
          **row, features.ITEM_ID: item_id, features.LABEL: 0.0,
          features.ITEM_TITLE: title, features.ITEM_CATEGORIES: categories,
          features.ITEM_POPULARITY_BUCKET: stats.item_buckets.get(item_id,
                                                                  "unseen")})
  return negatives


def finish_user_rows(sequence: user_sequences.UserSequence,
                     stats: global_passes.GlobalStats, history_length: int,
                     side_info: SideInfo, ctr_negatives: int = 0,
                     negative_seed: int = 0
                     ) -> list[tuple[str, dict]]:
  """One user's final `(split, row)` pairs.

  Rows get their slice buckets; with `ctr_negatives`, each positive is
  followed by its negatives (a file with every negative at the end would give
  a shuffle buffer batches of one label); eval rows of users outside
  `stats.eval_users` are dropped.
  """
  rows = user_rows(sequence, history_length, side_info)
  user_bucket = global_passes.activity_bucket(sequence.n_train,
                                              stats.activity_thresholds)
  for _, row in rows:
    row[features.USER_ACTIVITY_BUCKET] = user_bucket
    row[features.ITEM_POPULARITY_BUCKET] = stats.item_buckets.get(
        row[features.ITEM_ID], "unseen")
  if ctr_negatives > 0:
    negatives = _negative_rows(sequence.user_id, rows, ctr_negatives,
                               negative_seed, stats, side_info)
    rows = [(split, row) for (split, positive), row_negatives
            in zip(rows, negatives) for row in [positive, *row_negatives]]
  if stats.eval_users is not None and sequence.user_id not in stats.eval_users:
    rows = [(split, row) for split, row in rows
            if split == user_sequences.TRAIN]
  return rows

