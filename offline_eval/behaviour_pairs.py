"""Item pairs from held-out behaviour logs (e.g. Taobao's pv/cart/fav/buy).

Two kinds of pairs feed the embedding probes (`offline_eval.probes`):

- conversion pairs: one row per (user, item) the user viewed, labelled 1 if
  the user also converted on it (e.g. bought it): the purchase-propensity
  probe's pairs;
- same-session pairs: two different items a user touched one after the
  other with at most a given gap: an item-item relation.

Both read a frame of events no model trained on, columns `user_index`,
`item_index`, `event` and `timestamp` (seconds).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

EVENT_COLUMNS = ("user_index", "item_index", "event", "timestamp")
# Taobao's behaviour names (`data.importers.import_taobao_userbehavior`).
VIEW_EVENT = "pv"
BUY_EVENT = "buy"
# A gap longer than this between two events of a user starts a new session
# (the common 30-minute rule of web analytics).
SESSION_GAP_SECONDS = 30 * 60


def conversion_pairs(events: pd.DataFrame, known_items: Sequence[np.ndarray],
                     view_event: str = VIEW_EVENT,
                     conversion_event: str = BUY_EVENT) -> pd.DataFrame:
  """The (user, viewed item) pairs, labelled by whether the user converted.

  Args:
    events: held-out events, columns `EVENT_COLUMNS`.
    known_items: per user index, the items the user vector is built from;
      a pair on one of them is dropped (the model saw the user with it).
    view_event: the event that makes a pair.
    conversion_event: the event that labels a pair 1.

  Returns:
    Columns `user_index`, `item_index`, `label` (0/1), one row per distinct
    viewed pair, sorted by user then item.
  """
  pair = events[["user_index", "item_index"]].astype(np.int64)
  viewed = pair[(events["event"] == view_event).to_numpy()].drop_duplicates()
  converted = pair[(events["event"] == conversion_event).to_numpy()]
  converted_codes = set(zip(converted["user_index"], converted["item_index"]))
  known_codes = {(user, int(item)) for user in viewed["user_index"].unique()
                 for item in known_items[user]}
  known = np.array([pair in known_codes for pair in
                    zip(viewed["user_index"], viewed["item_index"])], bool)
  viewed = viewed[~known].sort_values(["user_index", "item_index"])
  labels = [(user, item) in converted_codes for user, item
            in zip(viewed["user_index"], viewed["item_index"])]
  return viewed.assign(label=np.asarray(labels, np.int64)).reset_index(
      drop=True)


def session_pairs(events: pd.DataFrame,
                  max_gap_seconds: int = SESSION_GAP_SECONDS,
                  items: np.ndarray | None = None) -> np.ndarray:
  """`[n, 2]` distinct item pairs touched one after the other in a session.

  Args:
    events: held-out events, columns `EVENT_COLUMNS`; each user's events are
      ordered by time here.
    max_gap_seconds: the longest gap between two events of one session.
    items: if given, a `[num_items]` mask; pairs with an item outside it are
      dropped (e.g. items no model has a trained vector for).

  Returns:
    Each unordered pair once (smaller index first), sorted.
  """
  ordered = events.sort_values(["user_index", "timestamp"], kind="stable")
  users = ordered["user_index"].to_numpy()
  item = ordered["item_index"].to_numpy(np.int64)
  times = ordered["timestamp"].to_numpy()
  follows = ((users[1:] == users[:-1]) &
             (times[1:] - times[:-1] <= max_gap_seconds) &
             (item[1:] != item[:-1]))
  pairs = np.stack([item[:-1][follows], item[1:][follows]], axis=1)
  if items is not None:
    pairs = pairs[items[pairs].all(axis=1)]
  return np.unique(np.sort(pairs, axis=1), axis=0).reshape(-1, 2)
