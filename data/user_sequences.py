"""Each user's positive interactions as one time-ordered, split sequence.

Step 1 of `data.examples`, which describes the split rules and how the work
is cut: the positives (label >= `POSITIVE_THRESHOLD`) of a contract
interactions log are read as events per user (`positive_events_by_user` in
memory, `packed_events_by_user` packed for a shuffle), each user's events
become a `UserSequence` (deduplicated, in time order, file order among
same-second events), and `split_sequence` sets its split boundary under a
`SplitRule`. The in-memory path and the Beam pipeline share this
representation; only one user's history is ever in memory at once.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from data import packed_columns

POSITIVE_THRESHOLD = 0.5

LEAVE_LAST_OUT = "leave_last_out"
TEMPORAL = "temporal"
SPLIT_RULES = (LEAVE_LAST_OUT, TEMPORAL)
TRAIN = "train"
EVAL = "eval"

# One positive interaction as a reader emits it:
# (timestamp, row_number, item_id, query, item_type). `row_number` is its
# position in the file, which orders same-second events.
PositiveEvent = tuple[int, int, str, str, str]


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

