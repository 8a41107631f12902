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
