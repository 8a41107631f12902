"""Train/valid/test splits of interaction logs, shared by the benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def leave_one_out(frame: pd.DataFrame, user_col: str = "user_id",
                  time_col: str = "time"
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
  """ReChorus' leave-one-out split: per user, last -> test, second last -> valid.

  Rows are ordered by time, ties kept in file order. Users with fewer than
  three interactions keep everything in train.

  Args:
    frame: the interaction log.
    user_col: user column.
    time_col: time column.

  Returns:
    `(train, valid, test)`, each sorted by user then time.
  """
  ordered = frame.sort_values([user_col, time_col], kind="stable")
  position_from_end = ordered.groupby(user_col, sort=False).cumcount(ascending=False)
  sizes = ordered.groupby(user_col, sort=False)[user_col].transform("size")
  eligible = sizes >= 3
  test = ordered[eligible & (position_from_end == 0)]
  valid = ordered[eligible & (position_from_end == 1)]
  train = ordered[~(eligible & (position_from_end <= 1))]
  return train, valid, test


def random_holdout(frame: pd.DataFrame, user_col: str, fraction: float,
                   seed: int, users=None) -> tuple[pd.DataFrame, pd.DataFrame]:
  """Holds out a seeded random share of each user's rows.

  For data without timestamps. Each selected user keeps at least one row in
  train and loses at least one to the held-out part; users with one row, and
  users outside `users`, stay entirely in train.

  Args:
    frame: the interaction log.
    user_col: user column.
    fraction: share of each user's rows to hold out, in (0, 1).
    seed: the sampling seed.
    users: optional collection of users to hold rows out from.

  Returns:
    `(train, heldout)`.
  """
  if not 0.0 < fraction < 1.0:
    raise ValueError(f"fraction must be in (0, 1), got {fraction}")
  rng = np.random.default_rng(seed)
  selected = frame[user_col].isin(users) if users is not None else pd.Series(
      True, index=frame.index)
  heldout_index = []
  for _, group in frame[selected].groupby(user_col, sort=True):
    if len(group) < 2:
      continue
    count = min(len(group) - 1, max(1, int(round(fraction * len(group)))))
    heldout_index.extend(rng.choice(group.index.to_numpy(), size=count, replace=False))
  heldout_mask = frame.index.isin(heldout_index)
  return frame[~heldout_mask], frame[heldout_mask]


def latest_per_user_mask(user_ids: np.ndarray, timestamps: np.ndarray,
                         min_rows: int = 2) -> np.ndarray:
  """Marks each user's newest row: the validation rows carved from train.

  Early stopping and hyperparameter tuning must never read the eval split, so
  they hold out each user's newest train positive instead, the same
  leave-last-out shape as eval one step earlier. Users with fewer than
  `min_rows` rows keep them all, so that nobody loses their whole history.
  Among rows with the same newest timestamp the last in input order is
  marked, so the carving is deterministic for a given row order.

  Args:
    user_ids: `[n]` user of each row.
    timestamps: `[n]` time of each row.
    min_rows: fewest rows a user needs to give one up.

  Returns:
    `[n]` bool, True on the rows held out for validation.
  """
  frame = pd.DataFrame({"user": np.asarray(user_ids),
                        "time": np.asarray(timestamps),
                        "order": np.arange(len(user_ids))})
  ordered = frame.sort_values(["user", "time", "order"], kind="stable")
  grouped = ordered.groupby("user", sort=False)
  newest = grouped.cumcount(ascending=False).to_numpy() == 0
  enough = grouped["user"].transform("size").to_numpy() >= min_rows
  mask = np.zeros(len(frame), dtype=bool)
  mask[ordered["order"].to_numpy()[newest & enough]] = True
  return mask


# Users whose held-out row a validation scores, at most. A full-catalogue
# validation costs rows x items: 250k held-out rows against 1M items take
# about 15 min an epoch on 2 cores (3.65 ms a row,
# benchmarks/results/validation_cost.json). 50,000 rows bound a Recall@50's
# standard error to about 0.002; the shared datasets and the contract log
# have fewer users, so they score every held-out row.
VALIDATION_MAX_USERS = 50_000

# Fibonacci hashing's multiplier (2⁶⁴ / φ): consecutive user indices land
# far apart, so the users with the lowest hashes are a spread sample.
_USER_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def scored_validation_mask(held_out: np.ndarray, user_ids: np.ndarray,
                           max_users: int | None = None) -> np.ndarray:
  """The held-out rows a validation scores: all, or a fixed sample's.

  The rows left unscored stay held out of training, so the cap changes what
  a validation costs, not what is trained on. The sample is the `max_users`
  users of lowest hash of their index, which depends on the index alone:
  the model's Trainer and the baselines' score the same users, whatever
  order they read the rows in.

  Args:
    held_out: `[n]` bool, the validation rows (`latest_per_user_mask`).
    user_ids: `[n]` non-negative integer user index of each row.
    max_users: users scored at most; None: `VALIDATION_MAX_USERS`.

  Returns:
    `[n]` bool, True on the held-out rows of the scored users.
  """
  if max_users is None:
    max_users = VALIDATION_MAX_USERS
  users = np.unique(user_ids[held_out])
  if len(users) <= max_users:
    return held_out.copy()
  # uint64 products wrap modulo 2⁶⁴, as the hash means them to.
  hashes = users.astype(np.uint64) * _USER_HASH_MULTIPLIER
  scored = users[np.argsort(hashes, kind="stable")[:max_users]]
  return held_out & np.isin(user_ids, scored)
