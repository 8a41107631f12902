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

How the work is cut, so that one log can be processed in memory here
(`build_rows`) or by a Beam pipeline over many workers
(`tfx_pipeline.components.interaction_example_beam`) with identical output:

1. Per user: the user's positive events become a `UserSequence` (deduplicated,
   in time order, file order among same-second events) and then get their
   split boundary (`split_sequence`). This is the one per-user sequence
   representation both paths share; only one user's history is ever in
   memory at once.
2. Global passes over small counts: the temporal cut from per-timestamp
   counts, the activity terciles from a histogram of train counts, popularity
   buckets and the negative sampler from per-item train counts, the eval user
   sample from the users' seeded keys (`GlobalStats`).
3. Per user again: `finish_user_rows` writes the user's rows with buckets,
   CTR negatives (drawn from an RNG seeded by the seed and the user, so no
   global draw order exists) and the eval user sample applied.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
from typing import AbstractSet, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from data import features
from data import packed_columns

POSITIVE_THRESHOLD = 0.5

LEAVE_LAST_OUT = "leave_last_out"
TEMPORAL = "temporal"
SPLIT_RULES = (LEAVE_LAST_OUT, TEMPORAL)
TRAIN = "train"
EVAL = "eval"

USER_ACTIVITY_BUCKETS = ("light", "medium", "heavy")
ITEM_POPULARITY_BUCKETS = ("head", "torso", "tail", "unseen")

# One positive interaction as a reader emits it:
# (timestamp, row_number, item_id, query, item_type). `row_number` is its
# position in the file, which orders same-second events.
PositiveEvent = tuple[int, int, str, str, str]
# Where an item first appears among train rows: (user_id, position).
FirstSeen = tuple[str, int]
# Title and categories of an item.
SideInfo = Mapping[str, tuple[str, list[str]]]


@dataclasses.dataclass(frozen=True)
class SplitRows:
  """Rows of both splits as lists of raw feature dicts."""
  train: list[dict]
  eval: list[dict]


@dataclasses.dataclass(frozen=True)
class SplitRule:
  """How each user's time-ordered positives are split.

  Attributes:
    name: `leave_last_out` or `temporal`.
    eval_holdout: under `leave_last_out`, newest positives held out.
    cut: under `temporal`, the global cut time (`temporal_cut`).
    cut_quantile: under `temporal`, the quantile the cut came from.
  """
  name: str = LEAVE_LAST_OUT
  eval_holdout: int = 1
  cut: int | None = None
  cut_quantile: float = 0.9

  def empty_eval_reason(self) -> str:
    """Why no user gets an eval row under this rule."""
    if self.name == LEAVE_LAST_OUT:
      return f"no user has more than {self.eval_holdout} positive interactions"
    return ("no user has positives both before and after the temporal cut "
            f"(quantile {self.cut_quantile}, timestamp {self.cut})")


@dataclasses.dataclass(frozen=True)
class UserSequence:
  """One user's positives in time order with the split boundary.

  The per-user sequence representation: the in-memory path and the Beam
  pipeline both group the log into these, and every per-user output (rows,
  train counts, seen items) is computed from one of them alone.

  Attributes:
    user_id: the user.
    item_ids: positive items, oldest first; same-second events in file order;
      an exact repeat (same item and second) kept once.
    timestamps: aligned with `item_ids`, non-decreasing.
    queries: aligned search queries, "" where none.
    item_types: aligned item types.
    n_train: positions `[0, n_train)` are train.
    n_eval: positions `[n_train, n_train + n_eval)` are eval; any later ones
      are in neither split.
  """
  user_id: str
  item_ids: list[str]
  timestamps: list[int]
  queries: list[str]
  item_types: list[str]
  n_train: int = 0
  n_eval: int = 0

  def seen_item_ids(self) -> list[str]:
    """The user's train items, unique, in first-seen order."""
    return list(dict.fromkeys(self.item_ids[:self.n_train]))


def unpack_events(packed: bytes) -> list[PositiveEvent]:
  """One user's events as `packed_events_by_user` packed them, in order."""
  (timestamps, row_numbers), texts = packed_columns.unpack(packed)
  return list(zip(timestamps, row_numbers, *texts))


def pack_sequence(sequence: UserSequence) -> bytes:
  """A `UserSequence` as compact bytes; `unpack_sequence` reads it back."""
  return packed_columns.pack(
      [sequence.timestamps, [sequence.n_train, sequence.n_eval]],
      [[sequence.user_id], sequence.item_ids, sequence.queries,
       sequence.item_types])


def unpack_sequence(packed: bytes) -> UserSequence:
  """The `UserSequence` that `pack_sequence` packed."""
  (timestamps, (n_train, n_eval)), ([user_id], item_ids, queries,
                                    item_types) = packed_columns.unpack(packed)
  return UserSequence(user_id=user_id, item_ids=item_ids,
                      timestamps=timestamps, queries=queries,
                      item_types=item_types, n_train=n_train, n_eval=n_eval)


def user_sequence(user_id: str, events: Iterable[PositiveEvent]) -> UserSequence:
  """Orders and deduplicates one user's positive events (no split yet)."""
  ordered = sorted(events, key=lambda event: (event[0], event[1]))
  kept, seen = [], set()
  for event in ordered:
    # An exact repeat (same item and second) is a logging duplicate, not a
    # second interaction; kept, it would put an eval target in its own
    # history. The earliest row in the file is the one kept.
    key = (event[2], event[0])
    if key not in seen:
      seen.add(key)
      kept.append(event)
  return UserSequence(
      user_id=user_id,
      timestamps=[int(event[0]) for event in kept],
      item_ids=[event[2] for event in kept],
      queries=[event[3] for event in kept],
      item_types=[event[4] for event in kept])


def split_sequence(sequence: UserSequence, rule: SplitRule) -> UserSequence:
  """Sets the split boundary of one user's sequence."""
  count = len(sequence.item_ids)
  if rule.name == LEAVE_LAST_OUT:
    n_train = count - rule.eval_holdout if count > rule.eval_holdout else count
    return dataclasses.replace(sequence, n_train=n_train, n_eval=count - n_train)
  # Sorted by time, so the train positives are a prefix.
  n_train = int(np.searchsorted(sequence.timestamps, rule.cut, side="left"))
  n_eval = 0 if n_train in (0, count) else 1
  return dataclasses.replace(sequence, n_train=n_train, n_eval=n_eval)


# ---------------------------------------------------------------- global passes


def _order_statistics(value_counts: Mapping[int, int], indices: Sequence[int]
                      ) -> list[int]:
  """Values at 0-based `indices` of the sorted multiset `value_counts`."""
  values = np.array(sorted(value_counts))
  cumulative = np.cumsum([value_counts[value] for value in values])
  return [values[np.searchsorted(cumulative, index, side="right")]
          for index in indices]


def quantile_from_counts(value_counts: Mapping[int, int], quantile: float
                         ) -> float:
  """`np.quantile(values, quantile)` (linear), from value -> count.

  The memory is that of the distinct values, not of the values; the result
  equals numpy's to the last bit, as it interpolates between the same two
  order statistics with numpy's own arithmetic.
  """
  size = sum(value_counts.values())
  position = (size - 1) * quantile
  below = int(np.floor(position))
  low, high = _order_statistics(value_counts,
                                [below, min(below + 1, size - 1)])
  return float(np.quantile(np.array([low, high]), position - below))


def temporal_cut_from_counts(timestamp_counts: Mapping[int, int],
                             cut_quantile: float) -> int:
  """The global split time from timestamp -> number of positives.

  Equals `temporal_cut` over the timestamps themselves.

  Raises:
    ValueError: if `cut_quantile` is not in (0, 1).
  """
  if not 0.0 < cut_quantile < 1.0:
    raise ValueError(f"temporal_cut_quantile must be in (0, 1), got {cut_quantile}")
  size = sum(timestamp_counts.values())
  (cut,) = _order_statistics(timestamp_counts,
                             [int(np.ceil((size - 1) * cut_quantile))])
  return int(cut)


def temporal_cut(timestamps: np.ndarray, cut_quantile: float) -> int:
  """The global split time: the `cut_quantile` of `timestamps` ("higher").

  Raises:
    ValueError: if `cut_quantile` is not in (0, 1).
  """
  values, counts = np.unique(np.asarray(timestamps), return_counts=True)
  return temporal_cut_from_counts(dict(zip(values.tolist(), counts.tolist())),
                                  cut_quantile)


def activity_thresholds(train_count_histogram: Mapping[int, int]
                        ) -> tuple[float, float]:
  """Tercile bounds of per-user train counts, from count -> number of users."""
  if not train_count_histogram:
    return (0.0, 0.0)
  return (quantile_from_counts(train_count_histogram, 1 / 3),
          quantile_from_counts(train_count_histogram, 2 / 3))


def activity_bucket(train_count: int, thresholds: tuple[float, float]) -> str:
  low, high = thresholds
  index = 0 if train_count <= low else (1 if train_count <= high else 2)
  return USER_ACTIVITY_BUCKETS[index]


def item_train_stats(sequence: UserSequence
                     ) -> dict[str, tuple[int, FirstSeen]]:
  """Item -> (train count, first train position) within one user."""
  stats = {}
  for position, item_id in enumerate(sequence.item_ids[:sequence.n_train]):
    count, first = stats.get(item_id, (0, (sequence.user_id, position)))
    stats[item_id] = (count + 1, first)
  return stats


def merge_item_stats(left: tuple[int, FirstSeen], right: tuple[int, FirstSeen]
                     ) -> tuple[int, FirstSeen]:
  return (left[0] + right[0], min(left[1], right[1]))


def popularity_buckets(item_stats: Mapping[str, tuple[int, FirstSeen]]
                       ) -> dict[str, str]:
  """Head/torso/tail: the items that make up each third of train rows.

  Items are ranked by train count; equal counts by where they first appear
  (users by id, then position), so the ranking needs no global row order.
  """
  total = sum(count for count, _ in item_stats.values())
  ranked = sorted(item_stats, key=lambda item: (-item_stats[item][0],
                                                item_stats[item][1]))
  buckets = {}
  cumulative = 0
  for item in ranked:
    buckets[item] = ITEM_POPULARITY_BUCKETS[min(int(cumulative / total * 3), 2)]
    cumulative += item_stats[item][0]
  return buckets


def _stable_hash(*parts) -> int:
  """A 64-bit hash that, unlike `hash`, is the same in every process."""
  text = "\x1f".join(str(part) for part in parts).encode("utf-8")
  return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def eval_user_key(user_id: str, seed: int) -> tuple[int, str]:
  """Sort key of the seeded eval user sample: the smallest keys are kept."""
  return (_stable_hash("eval_sample", seed, user_id), user_id)


def eval_user_sample(keys: Iterable[tuple[int, str]], max_users: int
                     ) -> frozenset[str] | None:
  """The users of the `max_users` smallest `eval_user_key`s; None = all."""
  if max_users <= 0:
    return None
  return frozenset(user for _, user in sorted(keys)[:max_users])


@dataclasses.dataclass(frozen=True)
class GlobalStats:
  """What every user's rows need from the whole train split.

  Attributes:
    activity_thresholds: tercile bounds of per-user train counts.
    item_buckets: item -> popularity bucket, for items in train.
    negative_items: `[n]` items negatives are drawn from, sorted.
    negative_probability: `[n]` their train-popularity distribution.
    eval_users: the sampled eval users, or None when all are kept.
  """
  activity_thresholds: tuple[float, float]
  item_buckets: dict[str, str]
  negative_items: np.ndarray
  negative_probability: np.ndarray
  eval_users: frozenset[str] | None = None


def global_stats(train_count_histogram: Mapping[int, int],
                 item_stats: Mapping[str, tuple[int, FirstSeen]],
                 eval_users: frozenset[str] | None = None) -> GlobalStats:
  """Builds `GlobalStats` from the combined per-user counts."""
  items = np.array(sorted(item_stats))
  probability = np.array([item_stats[item][0] for item in items], np.float64)
  return GlobalStats(
      activity_thresholds=activity_thresholds(train_count_histogram),
      item_buckets=popularity_buckets(item_stats),
      negative_items=items,
      negative_probability=probability / probability.sum(),
      eval_users=eval_users)


def check_eval_not_empty(eval_user_count: int, rule: SplitRule) -> None:
  """Raises `ValueError` when no user has an eval row."""
  if eval_user_count == 0:
    raise ValueError(f"{rule.empty_eval_reason()}, so the time-based eval "
                     "split would be empty")


# ---------------------------------------------------------------- per-user rows


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


def user_rows(sequence: UserSequence, history_length: int,
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
    rows.append((EVAL if is_eval else TRAIN, {
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
                   seed: int, stats: GlobalStats, side_info: SideInfo
                   ) -> list[list[dict]]:
  """`count` label-0 copies of each of one user's rows, for CTR rankers.

  Each copy keeps the positive's user, time and history and replaces the item
  with one the user never chose in either split, drawn from the train-split
  popularity (`sample_popular_negatives`) by an RNG seeded with `seed` and
  the user, so a user's negatives do not depend on any other user.
  """
  excluded = {row[features.ITEM_ID] for _, row in rows}
  rng = np.random.default_rng([seed, _stable_hash("negatives", user_id)])
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


def finish_user_rows(sequence: UserSequence, stats: GlobalStats,
                     history_length: int, side_info: SideInfo,
                     ctr_negatives: int = 0, negative_seed: int = 0
                     ) -> list[tuple[str, dict]]:
  """One user's final `(split, row)` pairs.

  Rows get their slice buckets; with `ctr_negatives`, each positive is
  followed by its negatives (a file with every negative at the end would give
  a shuffle buffer batches of one label); eval rows of users outside
  `stats.eval_users` are dropped.
  """
  rows = user_rows(sequence, history_length, side_info)
  user_bucket = activity_bucket(sequence.n_train, stats.activity_thresholds)
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
    rows = [(split, row) for split, row in rows if split == TRAIN]
  return rows


# ---------------------------------------------------------------- in memory


def check_arguments(split: str, eval_holdout: int, history_length: int) -> None:
  """Raises `ValueError` on an argument out of range."""
  if split not in SPLIT_RULES:
    raise ValueError(f"unknown split {split!r}; use one of {SPLIT_RULES}")
  if eval_holdout < 1:
    raise ValueError(f"eval_holdout must be >= 1, got {eval_holdout}")
  if not 0 < history_length <= features.HISTORY_LENGTH:
    raise ValueError(f"history_length must be in [1, {features.HISTORY_LENGTH}],"
                     f" got {history_length}")


def positive_rows(interactions: pd.DataFrame) -> pd.DataFrame:
  """The rows of a contract interactions frame that count as positives."""
  return interactions[interactions["label"] >= POSITIVE_THRESHOLD]


def positive_events_by_user(interactions: pd.DataFrame
                            ) -> dict[str, list[PositiveEvent]]:
  """Each user's positive events in a contract interactions frame, in file
  order.

  The frame's index is taken as the row number, so it must be the file
  order (as `data.contract` returns it).
  """
  positives = positive_rows(interactions)
  events_by_user = collections.defaultdict(list)
  for user_id, event in zip(
      positives["user_id"],
      zip(positives["timestamp"].tolist(), positives.index.tolist(),
          positives["item_id"], positives["query"], positives["item_type"])):
    events_by_user[user_id].append(event)
  return events_by_user


_EVENT_TEXT_COLUMNS = ("item_id", "query", "item_type")


def positive_event_columns(interactions: pd.DataFrame) -> pd.DataFrame:
  """The positive rows of a contract interactions frame, in the columns an
  event needs, for `packed_events_by_user`.

  Each distinct string is held once: a contract frame holds a string object
  per cell, about 60 bytes, and a reader keeps many chunks' positives while
  it fills a window.

  Args:
    interactions: a contract interactions frame whose index is each row's
      position in the file.

  Returns:
    `user_id`, `timestamp` and the event's text columns of the positive
    rows, with the same index.
  """
  positives = positive_rows(interactions)
  columns = {"timestamp": positives["timestamp"].to_numpy()}
  for name in ("user_id",) + _EVENT_TEXT_COLUMNS:
    # Not `pd.factorize`: its string table cuts strings at a NUL character.
    held = {}
    columns[name] = np.array(list(map(held.setdefault, positives[name],
                                      positives[name])), dtype=object)
  return pd.DataFrame(columns, index=positives.index)


def packed_events_by_user(positives: pd.DataFrame
                          ) -> Iterator[tuple[str, bytes]]:
  """Each user's positive events, packed.

  The events of `positive_events_by_user`, in the same order, each user's as
  one bytes value that `unpack_events` reads back (`data.packed_columns`).
  It works on columns and builds no Python object per event, so a reader
  can group many rows at once before a shuffle.

  Args:
    positives: `positive_event_columns` of a frame, or several concatenated.

  Yields:
    `(user_id, packed events)`, one per user, in order of first appearance.
  """
  user_ids = positives["user_id"].to_numpy()
  # Each row's code is the position of its user's first row (not
  # `pd.factorize`, which cuts strings at a NUL). A stable sort on it puts
  # users in order of first appearance, each user's events in file order.
  first_rows = {}
  user_codes = np.fromiter(
      map(first_rows.setdefault, user_ids, itertools.count()),
      dtype=np.int64, count=len(user_ids))
  order = np.argsort(user_codes, kind="stable")
  sorted_codes = user_codes[order]
  starts = np.flatnonzero(np.diff(sorted_codes, prepend=-1))
  ends = np.append(starts[1:], len(order))
  int_columns = [positives["timestamp"].to_numpy()[order],
                 positives.index.to_numpy()[order]]
  text_columns = [positives[name].to_numpy()[order]
                  for name in _EVENT_TEXT_COLUMNS]
  for start, end in zip(starts, ends):
    yield user_ids[sorted_codes[start]], packed_columns.pack(
        [column[start:end] for column in int_columns],
        [column[start:end] for column in text_columns])


def build_rows(dataset, eval_holdout: int = 1,
               history_length: int = features.HISTORY_LENGTH,
               ctr_negatives: int = 0, negative_seed: int = 0,
               split: str = LEAVE_LAST_OUT,
               temporal_cut_quantile: float = 0.9,
               eval_max_users: int = 0) -> SplitRows:
  """Builds the train and eval rows of a dataset, in memory.

  Users come in id order, each user's train rows before their eval rows.

  Args:
    dataset: a validated `data.contract.Dataset`.
    eval_holdout: under `leave_last_out`, how many of each user's newest
      positives go to eval.
    history_length: cap on the history, keeping the most recent items.
    ctr_negatives: sampled label-0 rows per positive row, in both splits,
      for CTR ranking families; 0 = positives only.
    negative_seed: seed of the negative sampling and of the eval user sample.
    split: `leave_last_out` or `temporal` (see the module docstring).
    temporal_cut_quantile: under `temporal`, the quantile of the positives'
      timestamps where train ends.
    eval_max_users: if > 0, keep the eval rows of at most this many users, a
      seeded sample (`eval_user_key`); train is unchanged.

  Returns:
    The rows of both splits.

  Raises:
    ValueError: if the dataset has no positive interaction, or the split
      leaves the eval split empty, or an argument is out of range.
  """
  check_arguments(split, eval_holdout, history_length)
  events = positive_events_by_user(
      dataset.interactions.reset_index(drop=True))
  if not events:
    raise ValueError("the interaction log has no positive interaction "
                     f"(label >= {POSITIVE_THRESHOLD}); nothing to train on")
  sequences = [user_sequence(user_id, events[user_id])
               for user_id in sorted(events)]
  rule = SplitRule(split, eval_holdout, cut_quantile=temporal_cut_quantile)
  if split == TEMPORAL:
    rule = dataclasses.replace(rule, cut=temporal_cut_from_counts(
        collections.Counter(t for s in sequences for t in s.timestamps),
        temporal_cut_quantile))
  sequences = [split_sequence(sequence, rule) for sequence in sequences]
  eval_users = [s.user_id for s in sequences if s.n_eval]
  check_eval_not_empty(len(eval_users), rule)

  item_stats = {}
  for sequence in sequences:
    for item_id, stats in item_train_stats(sequence).items():
      item_stats[item_id] = (merge_item_stats(item_stats[item_id], stats)
                             if item_id in item_stats else stats)
  stats = global_stats(
      collections.Counter(s.n_train for s in sequences if s.n_train),
      item_stats,
      eval_user_sample((eval_user_key(user, negative_seed)
                        for user in eval_users), eval_max_users))
  side_info = item_side_info(dataset.items)
  rows = SplitRows(train=[], eval=[])
  for sequence in sequences:
    for split_name, row in finish_user_rows(sequence, stats, history_length,
                                            side_info, ctr_negatives,
                                            negative_seed):
      (rows.train if split_name == TRAIN else rows.eval).append(row)
  return rows
