"""Each user's train positives as a sequence, and SASRec's windows over them.

The train split holds one example per user with every train positive in
order (`features.SEQUENCE_*`), so a user's sequence is read directly from
it (`read_user_sequences`). Per-interaction rows, as `models.user_rows`
expands the examples or a unit test lays them out, are placed in their
sequences by `read_sequence_rows`: a user's rows come one after another,
oldest first. Either way the positives are in the order in which the
expanded split is read, so a mask over them marks the same rows there.
`windows` then cuts each user's sequence into SASRec's training rows:
`length` input items and, at every position, the next item and the context
of the request that chose it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import user_rows

# The request context of each example, one value per example.
CONTEXT_FEATURES = (features.HOUR_OF_DAY, features.DAY_OF_WEEK,
                    features.TIMESTAMP_Z)
# Each context feature's per-position counterpart in a per-user example.
_SEQUENCE_CONTEXT = {
    features.HOUR_OF_DAY: features.SEQUENCE_HOUR_OF_DAY,
    features.DAY_OF_WEEK: features.SEQUENCE_DAY_OF_WEEK,
    features.TIMESTAMP_Z: features.SEQUENCE_TIMESTAMP_Z,
}


@dataclasses.dataclass(frozen=True)
class SequenceRows:
  """The positives of a split in read order, placed in their users' sequences.

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


def positions_in_sequences(users: np.ndarray) -> np.ndarray:
  """`[n]` each row's place among its user's rows, which come one after
  another, oldest first.

  Raises:
    ValueError: if a user's rows are not all together.
  """
  starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
  run_users = users[starts]
  _, first_runs = np.unique(run_users, return_index=True)
  if len(first_runs) < len(run_users):
    repeated = run_users[np.setdiff1d(np.arange(len(run_users)),
                                      first_runs)[0]]
    raise ValueError(
        f"user {repeated}'s rows are not all together in the read order: "
        "the rows must be each user's positives one after another, oldest "
        "first, as the per-user train examples expand")
  run_of_row = np.repeat(np.arange(len(starts)),
                         np.diff(np.r_[starts, len(users)]))
  return np.arange(len(users)) - starts[run_of_row]


def read_sequence_rows(batches: Iterable[Mapping[str, np.ndarray]]
                       ) -> SequenceRows:
  """Places per-interaction positive rows in their users' sequences.

  Args:
    batches: dicts of `[batch]` (or `[batch, 1]`) `USER_INDEX`,
      `ITEM_INDEX` and `CONTEXT_FEATURES`, in read order, each user's rows
      one after another, oldest first.

  Returns:
    The rows in read order, with their positions.

  Raises:
    ValueError: if a user's rows are not all together.
  """
  names = (features.USER_INDEX, features.ITEM_INDEX, *CONTEXT_FEATURES)
  columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
  for batch in batches:
    for name in names:
      columns[name].append(np.reshape(batch[name], [-1]))
  merged = {name: np.concatenate(values) for name, values in columns.items()}
  users = merged[features.USER_INDEX]
  return SequenceRows(
      users=users, targets=merged[features.ITEM_INDEX].astype(np.int64),
      context={name: merged[name] for name in CONTEXT_FEATURES},
      positions=positions_in_sequences(users))


def read_user_sequences(examples: Iterable[Mapping[str, tf.Tensor]]
                        ) -> SequenceRows:
  """Each user's positives, read from the per-user train examples.

  Args:
    examples: batches of transformed per-user train examples in read order:
      `USER_INDEX` `[batch]` (or `[batch, 1]`), and `SEQUENCE_ITEM_INDICES`
      and the `SEQUENCE_*` counterparts of `CONTEXT_FEATURES` as `[batch,
      None]` sparse or ragged tensors.

  Returns:
    Every positive, example after example and oldest first: the order of
    the expanded rows' positives.

  Raises:
    ValueError: if a user has two examples.
  """
  user_parts, targets = [], []
  context: dict[str, list[np.ndarray]] = {name: [] for name in CONTEXT_FEATURES}
  for batch in examples:
    sequences = user_rows.as_ragged(batch[features.SEQUENCE_ITEM_INDICES])
    user_parts.append(np.repeat(np.reshape(batch[features.USER_INDEX], [-1]),
                                sequences.row_lengths().numpy()))
    targets.append(sequences.flat_values.numpy().astype(np.int64))
    for name, sequence_name in _SEQUENCE_CONTEXT.items():
      context[name].append(
          user_rows.as_ragged(batch[sequence_name]).flat_values.numpy())
  users = np.concatenate(user_parts)
  return SequenceRows(
      users=users, targets=np.concatenate(targets),
      context={name: np.concatenate(values)
               for name, values in context.items()},
      positions=positions_in_sequences(users))


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
