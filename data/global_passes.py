"""Step 2 of `data.examples`: global passes over small counts.

What every user's rows need from the whole log, from counts as large as the
distinct values, never as the rows: the temporal cut from per-timestamp
counts, the activity terciles from a histogram of per-user train counts,
popularity buckets and the negative sampler from per-item train counts, and
the eval user sample from the users' seeded keys (`GlobalStats`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from data import user_sequences

USER_ACTIVITY_BUCKETS = ("light", "medium", "heavy")
ITEM_POPULARITY_BUCKETS = ("head", "torso", "tail", "unseen")

# Where an item first appears among train rows: (user_id, position).
FirstSeen = tuple[str, int]


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


def item_train_stats(sequence: user_sequences.UserSequence
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


def stable_hash(*parts) -> int:
  """A 64-bit hash that, unlike `hash`, is the same in every process."""
  text = "\x1f".join(str(part) for part in parts).encode("utf-8")
  return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def eval_user_key(user_id: str, seed: int) -> tuple[int, str]:
  """Sort key of the seeded eval user sample: the smallest keys are kept."""
  return (stable_hash("eval_sample", seed, user_id), user_id)


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


def check_eval_not_empty(eval_user_count: int,
                         rule: user_sequences.SplitRule) -> None:
  """Raises `ValueError` when no user has an eval row."""
  if eval_user_count == 0:
    raise ValueError(f"{rule.empty_eval_reason()}, so the time-based eval "
                     "split would be empty")

