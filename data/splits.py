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
