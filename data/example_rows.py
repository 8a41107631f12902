"""Step 3 of `data.examples`: one user's stored train and eval examples.

`finish_user_examples` turns a split `UserSequence` into raw feature dicts:
one train example per user that holds each train positive once, with its
own time, type, query, title and categories (`train_rows` expands it into
the per-interaction rows it stands for), and one eval row per eval positive
with the user's newest earlier positives as history and every train item
(`SEEN_ITEM_IDS`). Both get the slice buckets of `GlobalStats`, optional CTR
negatives (drawn from an RNG seeded by the seed and the user, so no global
draw order exists) and the eval user sample.
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


def _position_features(sequence: user_sequences.UserSequence, position: int,
                       side_info: SideInfo) -> dict:
  """The features of one of a user's positives that do not depend on the
  rest of the sequence."""
  item_id = sequence.item_ids[position]
  title, categories = side_info.get(item_id, ("", []))
  return {
      features.ITEM_ID: item_id,
      features.TIMESTAMP: int(sequence.timestamps[position]),
      features.LABEL: 1.0,
      features.ITEM_TYPE: sequence.item_types[position] or "item",
      features.QUERY: sequence.queries[position],
      features.ITEM_TITLE: title,
      features.ITEM_CATEGORIES: categories,
  }


def _negative_row(row: dict, item_id: str, stats: global_passes.GlobalStats,
                  side_info: SideInfo) -> dict:
  """A label-0 copy of `row` (user, time, history kept) with `item_id`."""
  title, categories = side_info.get(item_id, ("", []))
  return {**row, features.ITEM_ID: item_id, features.LABEL: 0.0,
          features.ITEM_TITLE: title, features.ITEM_CATEGORIES: categories,
          features.ITEM_POPULARITY_BUCKET: stats.item_buckets.get(item_id,
                                                                  "unseen")}


def _negatives_per_position(sequence: user_sequences.UserSequence,
                            positions: int, count: int, seed: int,
                            stats: global_passes.GlobalStats) -> list[list]:
  """`count` CTR negatives for each of the user's first `positions`.

  Each is an item the user never chose in either split, drawn from the
  train-split popularity (`sample_popular_negatives`) by an RNG seeded with
  `seed` and the user, position after position, so a user's negatives do
  not depend on any other user.
  """
  excluded = set(sequence.item_ids[:sequence.n_train + sequence.n_eval])
  rng = np.random.default_rng(
      [seed, global_passes.stable_hash("negatives", sequence.user_id)])
  return [sample_popular_negatives(rng, stats.negative_items,
                                   stats.negative_probability, excluded, count)
          for _ in range(positions)]


def _joined(categories: list[str]) -> str:
  return features.CATEGORY_SEPARATOR.join(categories)


def split_categories(joined: str) -> list[str]:
  """A position's categories as a stored example joins them, "" dropped."""
  return [c for c in joined.split(features.CATEGORY_SEPARATOR) if c]


def _train_example(sequence: user_sequences.UserSequence,
                   negatives: list[list], user_bucket: str,
                   stats: global_passes.GlobalStats,
                   side_info: SideInfo) -> dict:
  """The user's one train example: the newest train positive, with every
  earlier one as history and its own features aligned with it."""
  newest = sequence.n_train - 1
  history = range(newest)
  side = [side_info.get(sequence.item_ids[p], ("", [])) for p in history]
  flat_negatives = [item for drawn in negatives for item in drawn]
  negative_side = [side_info.get(item, ("", [])) for item in flat_negatives]
  return {
      features.USER_ID: sequence.user_id,
      **_position_features(sequence, newest, side_info),
      features.HISTORY_ITEM_IDS: sequence.item_ids[:newest],
      features.HISTORY_QUERIES: sequence.queries[:newest],
      features.HISTORY_TIMESTAMPS: [int(t) for t in
                                    sequence.timestamps[:newest]],
      features.HISTORY_ITEM_TYPES: [t or "item" for t in
                                    sequence.item_types[:newest]],
      features.HISTORY_ITEM_TITLES: [title for title, _ in side],
      features.HISTORY_ITEM_CATEGORIES: [_joined(c) for _, c in side],
      features.SEEN_ITEM_IDS: [],
      features.USER_ACTIVITY_BUCKET: user_bucket,
      features.ITEM_POPULARITY_BUCKET: stats.item_buckets.get(
          sequence.item_ids[newest], "unseen"),
      features.NEGATIVE_ITEM_IDS: flat_negatives,
      features.NEGATIVE_ITEM_TITLES: [title for title, _ in negative_side],
      features.NEGATIVE_ITEM_CATEGORIES: [_joined(c) for _, c in negative_side],
  }


def _rows(sequence: user_sequences.UserSequence, positions: range,
          negatives: list[list], history_length: int, side_info: SideInfo,
          negative_side_info: SideInfo, user_bucket: str,
          stats: global_passes.GlobalStats, seen: list[str]) -> list[dict]:
  """The per-interaction rows of `positions` of a user's sequence.

  Each positive with its newest `history_length` earlier positives as
  history, followed by its CTR negatives (`negatives[position]`), both with
  their slice buckets; `seen` goes to every row's `SEEN_ITEM_IDS`.
  """
  rows = []
  for position in positions:
    history = slice(max(0, position - history_length), position)
    row = {
        features.USER_ID: sequence.user_id,
        **_position_features(sequence, position, side_info),
        features.HISTORY_ITEM_IDS: sequence.item_ids[history],
        features.HISTORY_QUERIES: sequence.queries[history],
        features.SEEN_ITEM_IDS: seen,
        features.USER_ACTIVITY_BUCKET: user_bucket,
        features.ITEM_POPULARITY_BUCKET: stats.item_buckets.get(
            sequence.item_ids[position], "unseen"),
    }
    rows.append(row)
    rows.extend(_negative_row(row, item_id, stats, negative_side_info)
                for item_id in negatives[position])
  return rows


def train_rows(example: dict, history_length: int,
               stats: global_passes.GlobalStats) -> list[dict]:
  """The per-interaction train rows a user's train example stands for.

  Each of the user's train positives, oldest first, with its newest
  `history_length` earlier positives as history, each followed by its CTR
  negatives: the rows the Trainer rebuilds from the transformed example
  (`models.user_rows`).

  Args:
    example: a train example of `finish_user_examples`.
    history_length: cap on each row's history, newest kept.
    stats: the global stats (popularity buckets of each row's item).

  Returns:
    The rows, in that order.
  """
  def aligned(history_name, name):
    return [*example[history_name], example[name]]
  sequence = user_sequences.UserSequence(
      user_id=example[features.USER_ID],
      item_ids=aligned(features.HISTORY_ITEM_IDS, features.ITEM_ID),
      timestamps=aligned(features.HISTORY_TIMESTAMPS, features.TIMESTAMP),
      queries=aligned(features.HISTORY_QUERIES, features.QUERY),
      item_types=aligned(features.HISTORY_ITEM_TYPES, features.ITEM_TYPE))
  positions = len(sequence.item_ids)
  side_info = dict(zip(sequence.item_ids, zip(
      aligned(features.HISTORY_ITEM_TITLES, features.ITEM_TITLE),
      [*map(split_categories, example[features.HISTORY_ITEM_CATEGORIES]),
       example[features.ITEM_CATEGORIES]])))
  negative_ids = example[features.NEGATIVE_ITEM_IDS]
  per_position = len(negative_ids) // positions
  negative_side_info = {
      item_id: (title, split_categories(joined))
      for item_id, title, joined in zip(
          negative_ids, example[features.NEGATIVE_ITEM_TITLES],
          example[features.NEGATIVE_ITEM_CATEGORIES])}
  return _rows(
      sequence, range(positions),
      [negative_ids[position * per_position:(position + 1) * per_position]
       for position in range(positions)],
      history_length, side_info, negative_side_info,
      example[features.USER_ACTIVITY_BUCKET], stats, [])


def finish_user_examples(sequence: user_sequences.UserSequence,
                         stats: global_passes.GlobalStats, history_length: int,
                         side_info: SideInfo, ctr_negatives: int = 0,
                         negative_seed: int = 0
                         ) -> list[tuple[str, dict]]:
  """One user's stored `(split, example)` pairs.

  At most one train example (`_train_example`: every train positive once,
  `train_rows` expands it) and the user's eval rows, each with its slice
  buckets; with `ctr_negatives`, each eval row is followed by its negatives
  (a file with every negative at the end would give a shuffle buffer
  batches of one label). Eval rows of users outside `stats.eval_users` are
  dropped.
  """
  user_bucket = global_passes.activity_bucket(sequence.n_train,
                                              stats.activity_thresholds)
  keeps_eval = (stats.eval_users is None
                or sequence.user_id in stats.eval_users)
  # Train positions draw first, so a user's train negatives are the same
  # whether or not their eval rows are kept.
  positions = sequence.n_train + (sequence.n_eval if keeps_eval else 0)
  negatives = (_negatives_per_position(sequence, positions, ctr_negatives,
                                       negative_seed, stats)
               if ctr_negatives > 0 else [[]] * positions)
  examples = []
  if sequence.n_train:
    examples.append((user_sequences.TRAIN, _train_example(
        sequence, negatives[:sequence.n_train], user_bucket, stats,
        side_info)))
  if keeps_eval:
    examples.extend((user_sequences.EVAL, row) for row in _rows(
        sequence, range(sequence.n_train, sequence.n_train + sequence.n_eval),
        negatives, history_length, side_info, side_info, user_bucket, stats,
        sequence.seen_item_ids()))
  return examples
