"""Per-user item sequences rebuilt from the per-interaction train examples.

The pipeline writes one example per positive interaction: its target item,
the request context (hour, weekday, z-scored time) and the user's earlier
positives as history, oldest first, right-padded, at most `cap` of them
(`features.HISTORY_LENGTH` or less). A user's examples therefore chain: the
example after one with history `h` and target `t` has history `h + [t]`, or
`h[1:] + [t]` once `h` holds `cap` items. Following that chain from the
empty history orders each user's examples exactly, also among events of the
same second (which Transform's float32 time cannot tell apart).

`read_sequence_rows` streams the split once and keeps, per example, its user,
target, context, history length and three 64-bit hashes of histories
(never the histories themselves): about 80 bytes per example, and while the
chains are followed one dictionary entry per example (a few hundred bytes:
some 30 MB for 100,000 examples). `windows` then
cuts each user's sequence into SASRec's training rows: `length` input items
and, at every position, the next item and the context of the request that
chose it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np

from data import features

# The request context of each example, one value per example.
CONTEXT_FEATURES = (features.HOUR_OF_DAY, features.DAY_OF_WEEK,
                    features.TIMESTAMP_Z)
# Odd, so that every power is invertible modulo 2**64: the hash of a row is
# a polynomial in it, and rows that differ in one item always differ in hash.
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def _row_hashes(rows: np.ndarray) -> np.ndarray:
  """`[n, width]` item indices -> `[n]` uint64 polynomial hashes (mod 2**64).

  Padding is 0 and adds nothing, so a row's hash does not depend on how far
  it is padded.
  """
  powers = np.cumprod(np.full(rows.shape[1], _HASH_BASE, np.uint64),
                      dtype=np.uint64)
  with np.errstate(over="ignore"):
    return np.sum(rows.astype(np.uint64) * powers, axis=1, dtype=np.uint64)


@dataclasses.dataclass(frozen=True)
class SequenceRows:
  """The examples of a split in read order, placed in their users' sequences.

  Attributes:
    users: `[n]` user index.
    targets: `[n]` target item index.
    context: `CONTEXT_FEATURES` name -> `[n]` values.
    positions: `[n]` 0-based position of the example's target in its user's
      sequence of positives.
  """
  users: np.ndarray
  targets: np.ndarray
  context: Mapping[str, np.ndarray]
  positions: np.ndarray


def _chain_positions(users: np.ndarray, lengths: np.ndarray,
                     history_hashes: np.ndarray,
                     successor_hashes: np.ndarray,
                     timestamps: np.ndarray) -> np.ndarray:
  """Each example's position, following every user's chain from `[]`.

  Raises:
    ValueError: if an example is on no chain, i.e. the examples are not
      every positive of their users up to some point in time.
  """
  # Several examples share a user and a history only if the user's last
  # `cap` items repeat; the chain then takes them in time order.
  order = np.lexsort((timestamps, history_hashes, users))
  by_history: dict[tuple[int, int], list[int]] = {}
  for row, user, history in zip(order.tolist(), users[order].tolist(),
                                history_hashes[order].tolist()):
    by_history.setdefault((user, history), []).append(row)
  for rows in by_history.values():
    rows.reverse()  # pop() takes the oldest.
  positions = np.full(len(users), -1, np.int64)
  successors = successor_hashes.tolist()
  for user in np.unique(users).tolist():
    history, position = 0, 0  # The empty history hashes to 0.
    while by_history.get((user, history)):
      row = by_history[(user, history)].pop()
      positions[row] = position
      history, position = successors[row], position + 1
  unplaced = np.flatnonzero(positions < 0)
  if len(unplaced):
    raise ValueError(
        f"{len(unplaced)} of {len(users)} examples continue no history of "
        f"their user (e.g. user {users[unplaced[0]]}, history length "
        f"{lengths[unplaced[0]]}): the examples must be all of each user's "
        "positives up to some time")
  return positions


def read_sequence_rows(batches: Iterable[Mapping[str, np.ndarray]]
                       ) -> SequenceRows:
  """Streams transformed examples and places each in its user's sequence.

  Args:
    batches: dicts of `[batch]` (or `[batch, 1]`) `USER_INDEX`,
      `ITEM_INDEX` and `CONTEXT_FEATURES`, and `[batch, width]`
      `HISTORY_ITEM_INDICES`, e.g. a Trainer's split read as numpy.

  Returns:
    The examples in read order, with their positions.
  """
  columns: dict[str, list[np.ndarray]] = {
      name: [] for name in ("users", "targets", "lengths", "history",
                            "appended", "shifted", *CONTEXT_FEATURES)}
  for batch in batches:
    history = np.asarray(batch[features.HISTORY_ITEM_INDICES], np.int64)
    targets = np.reshape(batch[features.ITEM_INDEX], [-1]).astype(np.int64)
    lengths = np.sum(history != features.PADDING_INDEX, axis=1)
    rows = np.arange(len(targets))
    # Below the cap the next history is `h + [t]`; at it, `h[1:] + [t]`
    # (t at the last real position). Which applies is known once the cap,
    # the longest history, is.
    appended = np.pad(history, [(0, 0), (0, 1)])
    appended[rows, lengths] = targets
    shifted = np.pad(history[:, 1:], [(0, 0), (0, 1)])
    shifted[rows, np.maximum(lengths - 1, 0)] = targets
    for name, values in (
        ("users", np.reshape(batch[features.USER_INDEX], [-1])),
        ("targets", targets), ("lengths", lengths),
        ("history", _row_hashes(history)), ("appended", _row_hashes(appended)),
        ("shifted", _row_hashes(shifted)),
        *((name, np.reshape(batch[name], [-1])) for name in CONTEXT_FEATURES)):
      columns[name].append(values)
  merged = {name: np.concatenate(values) for name, values in columns.items()}
  lengths = merged["lengths"]
  cap = lengths.max(initial=0)
  successors = np.where(lengths < cap, merged["appended"], merged["shifted"])
  positions = _chain_positions(merged["users"], lengths, merged["history"],
                               successors, merged[features.TIMESTAMP_Z])
  return SequenceRows(
      users=merged["users"], targets=merged["targets"],
      context={name: merged[name] for name in CONTEXT_FEATURES},
      positions=positions)


def windows(rows: SequenceRows, keep: np.ndarray, length: int,
            every_window: bool) -> dict[str, np.ndarray]:
  """SASRec's training rows: windows of `length + 1` items of each user.

  Each window's first `length` items are the input (right-padded, oldest
  first, like a served history) and, at every input position, the next item
  is the target, with the context of its request. A user's last window ends
  at their newest kept item; with `every_window`, earlier ones end every
  `length` items before it, so that every kept item but the user's first
  is the target of exactly one position.

  Args:
    rows: the examples, placed.
    keep: `[n]` the examples to use, e.g. all but the validation rows; a
      user's kept examples are taken as one sequence in position order.
    length: input items per window, at most the served history's length.
    every_window: also the windows before the last one.

  Returns:
    `[windows, length]` arrays: `HISTORY_ITEM_INDICES` (the inputs),
    `ITEM_INDEX` (the target at each position, 0 where there is no input)
    and each of `CONTEXT_FEATURES`.
  """
  order = np.flatnonzero(keep)
  order = order[np.lexsort((rows.positions[order], rows.users[order]))]
  items = rows.targets[order]
  context = {name: values[order] for name, values in rows.context.items()}
  starts = np.flatnonzero(np.r_[True, np.diff(rows.users[order]) != 0])
  ends = np.r_[starts[1:], len(order)]
  spans = []  # (first, last) of each window, `last` the newest target.
  for first_of_user, end in zip(starts.tolist(), ends.tolist()):
    last = end - 1
    while last > first_of_user:
      spans.append((max(first_of_user, last - length), last))
      if not every_window:
        break
      last -= length
  inputs = np.zeros([len(spans), length], np.int64)
  outputs = {features.HISTORY_ITEM_INDICES: inputs,
             features.ITEM_INDEX: np.zeros_like(inputs)}
  outputs.update({name: np.zeros([len(spans), length], values.dtype)
                  for name, values in context.items()})
  for window, (first, last) in enumerate(spans):
    size = last - first
    inputs[window, :size] = items[first:last]
    outputs[features.ITEM_INDEX][window, :size] = items[first + 1:last + 1]
    for name, values in context.items():
      outputs[name][window, :size] = values[first + 1:last + 1]
  return outputs
