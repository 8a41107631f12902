"""The online user-history store the server reads a user's history from.

A request that sends only a user id is answered from the history kept here
(`serving.stored_histories`); the event RPC appends to it, and
`serving.history_journal` rebuilds it from the last push's snapshot plus the
events logged since. One small interface, two stores, picked by URL:

- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (as
  SQLAlchemy spells them): SQLite, embedded, no server (the default for one
  process; WAL mode lets the server's threads read while one writes);
- `redis://host:port/db`: Redis, shared by every replica of the server.

Each user's history is kept oldest first, at most `max_items` entries (the
newest): the window the seen-items filter covers. Every failure to reach the
store is raised as `StoreUnavailableError`, so the server can answer
UNAVAILABLE instead of crashing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sqlite3
import threading
import urllib.parse
from typing import Iterable, Iterator, Mapping, Optional, Protocol, Sequence

import redis

SQLITE_SCHEME = "sqlite"
REDIS_SCHEME = "redis"
# The newest items kept per user by default: far more than the 50 a query
# tower reads, so that the seen-items filter covers a long history.
DEFAULT_MAX_ITEMS = 1000
# A store that does not answer fails the request after this long instead of
# holding a serving thread.
DEFAULT_TIMEOUT_S = 0.5
_REDIS_KEY_PREFIX = "vrec:history:"
# Users written per Redis round trip when the whole store is rewritten.
_REDIS_WRITE_BATCH = 1000


class StoreUnavailableError(Exception):
  """The store cannot be reached or cannot answer."""


@dataclasses.dataclass(frozen=True)
class UserHistory:
  """One user's latest interactions, oldest first.

  Attributes:
    item_ids: the items.
    timestamps: when each happened, aligned with `item_ids`.
  """
  item_ids: tuple[str, ...]
  timestamps: tuple[int, ...]

  def appended(self, item_id: str, timestamp: int,
               max_items: int) -> "UserHistory":
    """This history with one more event, cut to the newest `max_items`."""
    return UserHistory((*self.item_ids, item_id)[-max_items:],
                       (*self.timestamps, timestamp)[-max_items:])


EMPTY_HISTORY = UserHistory((), ())


class HistoryStore(Protocol):
  """Where user histories live while the server answers requests."""
  url: str
  max_items: int

  def read(self, user_ids: Sequence[str]) -> list[Optional[UserHistory]]:
    """Each user's history, None for a user the store does not know."""
    ...

  def append(self, events: Iterable[tuple[str, str, int]]) -> None:
    """Appends `(user_id, item_id, timestamp)` events, in order."""
    ...

  def replace_all(self, histories: Mapping[str, UserHistory]) -> None:
    """Makes the store hold exactly `histories`."""
    ...

  def close(self) -> None:
    ...


def _unavailable(url: str, error: Exception) -> StoreUnavailableError:
  return StoreUnavailableError(
      f"user history store {url} is unavailable: "
      f"{type(error).__name__}: {error}")


# ---------------------------------------------------------------- SQLite ---


class SqliteHistoryStore:
  """Histories in one SQLite file: one row per event, newest kept."""

  def __init__(self, path: str, max_items: int = DEFAULT_MAX_ITEMS,
               timeout_s: float = DEFAULT_TIMEOUT_S):
    self.url = f"{SQLITE_SCHEME}:///{os.path.abspath(path)}"
    self.max_items = max_items
    self._path = path
    self._timeout_s = timeout_s
    # sqlite3 connections belong to the thread that opened them.
    self._local = threading.local()
    with self._guarded() as connection:
      connection.execute("PRAGMA journal_mode=WAL")
      connection.execute(
          "CREATE TABLE IF NOT EXISTS events (user_id TEXT NOT NULL, "
          "item_id TEXT NOT NULL, timestamp INTEGER NOT NULL, "
          "seq INTEGER PRIMARY KEY AUTOINCREMENT)")
      connection.execute("CREATE INDEX IF NOT EXISTS events_by_user "
                         "ON events (user_id, seq)")

  def _connection(self) -> sqlite3.Connection:
    connection = getattr(self._local, "connection", None)
    if connection is None:
      # mode=rw: a store whose file vanished is down, not silently empty.
      uri = (pathlib.Path(os.path.abspath(self._path)).as_uri()
             + f"?mode={'rw' if os.path.exists(self._path) else 'rwc'}")
      connection = sqlite3.connect(uri, uri=True, timeout=self._timeout_s,
                                   isolation_level=None)
      self._local.connection = connection
    return connection

  @contextlib.contextmanager
  def _guarded(self) -> Iterator[sqlite3.Connection]:
    """The thread's connection; any sqlite3 error means the store is down."""
    try:
      yield self._connection()
    except sqlite3.Error as error:
      # A broken connection is not reused by the next request.
      self._local.connection = None
      raise _unavailable(self.url, error) from error

  def read(self, user_ids: Sequence[str]) -> list[Optional[UserHistory]]:
    histories = []
    with self._guarded() as connection:
      for user_id in user_ids:
        rows = connection.execute(
            "SELECT item_id, timestamp FROM events WHERE user_id = ? "
            "ORDER BY seq DESC LIMIT ?", (user_id, self.max_items)).fetchall()
        histories.append(UserHistory(
            tuple(row[0] for row in reversed(rows)),
            tuple(row[1] for row in reversed(rows))) if rows else None)
    return histories

  def append(self, events: Iterable[tuple[str, str, int]]) -> None:
    with self._guarded() as connection:
      connection.executemany(
          "INSERT INTO events (user_id, item_id, timestamp) VALUES (?, ?, ?)",
          [(user_id, item_id, int(timestamp))
           for user_id, item_id, timestamp in events])

  def replace_all(self, histories: Mapping[str, UserHistory]) -> None:
    with self._guarded() as connection:
      connection.execute("BEGIN")
      try:
        connection.execute("DELETE FROM events")
        connection.executemany(
            "INSERT INTO events (user_id, item_id, timestamp) "
            "VALUES (?, ?, ?)",
            [(user_id, item_id, int(timestamp))
             for user_id, history in histories.items()
             for item_id, timestamp in zip(
                 history.item_ids[-self.max_items:],
                 history.timestamps[-self.max_items:])])
        connection.execute("COMMIT")
      except BaseException:
        connection.execute("ROLLBACK")
        raise

  def close(self) -> None:
    connection = getattr(self._local, "connection", None)
    if connection is not None:
      connection.close()
      self._local.connection = None


# ----------------------------------------------------------------- Redis ---


def _redis_key(user_id: str) -> str:
  return _REDIS_KEY_PREFIX + user_id


def _redis_entry(item_id: str, timestamp: int) -> str:
  return json.dumps([item_id, int(timestamp)])


class RedisHistoryStore:
  """Histories in Redis: one list per user of `[item_id, timestamp]` JSON
  entries, oldest first, trimmed to the newest `max_items` on each append."""

  def __init__(self, url: str, max_items: int = DEFAULT_MAX_ITEMS,
               timeout_s: float = DEFAULT_TIMEOUT_S):
    self.url = url
    self.max_items = max_items
    # A connection pool shared by the server's threads; no retries, so a
    # store that is down fails the request within the timeout.
    self._client = redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        decode_responses=True)

  def _call(self, run):
    try:
      return run()
    except redis.RedisError as error:
      raise _unavailable(self.url, error) from error

  def read(self, user_ids: Sequence[str]) -> list[Optional[UserHistory]]:

    def run():
      pipeline = self._client.pipeline(transaction=False)
      for user_id in user_ids:
        pipeline.lrange(_redis_key(user_id), -self.max_items, -1)
      return pipeline.execute()

    histories = []
    for entries in self._call(run):
      pairs = [json.loads(entry) for entry in entries]
      histories.append(UserHistory(
          tuple(pair[0] for pair in pairs),
          tuple(pair[1] for pair in pairs)) if pairs else None)
    return histories

  def append(self, events: Iterable[tuple[str, str, int]]) -> None:
    events = list(events)

    def run():
      pipeline = self._client.pipeline(transaction=True)
      for user_id, item_id, timestamp in events:
        pipeline.rpush(_redis_key(user_id), _redis_entry(item_id, timestamp))
      for user_id in dict.fromkeys(user_id for user_id, _, _ in events):
        pipeline.ltrim(_redis_key(user_id), -self.max_items, -1)
      pipeline.execute()

    self._call(run)

  def replace_all(self, histories: Mapping[str, UserHistory]) -> None:
    users = list(histories)

    def run():
      stale = [key for key in self._client.scan_iter(
          match=_REDIS_KEY_PREFIX + "*", count=_REDIS_WRITE_BATCH)
               if key[len(_REDIS_KEY_PREFIX):] not in histories]
      for first in range(0, len(stale), _REDIS_WRITE_BATCH):
        self._client.delete(*stale[first:first + _REDIS_WRITE_BATCH])
      for first in range(0, len(users), _REDIS_WRITE_BATCH):
        pipeline = self._client.pipeline(transaction=True)
        for user_id in users[first:first + _REDIS_WRITE_BATCH]:
          history = histories[user_id]
          pipeline.delete(_redis_key(user_id))
          entries = [_redis_entry(item_id, timestamp) for item_id, timestamp
                     in zip(history.item_ids[-self.max_items:],
                            history.timestamps[-self.max_items:])]
          if entries:
            pipeline.rpush(_redis_key(user_id), *entries)
        pipeline.execute()

    self._call(run)

  def close(self) -> None:
    self._client.close()


def open_store(url: str, max_items: int = DEFAULT_MAX_ITEMS,
               timeout_s: float = DEFAULT_TIMEOUT_S) -> HistoryStore:
  """The store a URL names: `sqlite:///path` or `redis://host:port/db`.

  Raises:
    ValueError: for any other scheme.
    StoreUnavailableError: if an SQLite file cannot be opened.
  """
  scheme = urllib.parse.urlsplit(url).scheme
  if scheme == SQLITE_SCHEME:
    return SqliteHistoryStore(url[len(f"{SQLITE_SCHEME}:///"):], max_items,
                              timeout_s)
  if scheme == REDIS_SCHEME:
    return RedisHistoryStore(url, max_items, timeout_s)
  raise ValueError(f"history store URL {url!r}: expected "
                   f"{SQLITE_SCHEME}:///path or {REDIS_SCHEME}://host:port/db")
