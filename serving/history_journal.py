"""What the online history store is rebuilt from: the last push's snapshot
and the events logged since.

A history directory holds two files:

- `snapshot.jsonl`, written after each push (`tfx_pipeline.history_writer`):
  a header line `{"as_of": T, ...}` (the newest timestamp of the data the
  pushed model was trained on), then one line per user with their newest
  item ids and timestamps, oldest first;
- `events-<writer>.jsonl`, append-only, one per server process writing
  there (`<writer>` is its host name, a pod's name on Kubernetes): every
  event that server's event RPC accepted, one line each, in the order it
  accepted them.

`rebuild` makes a store hold the snapshot plus the logged events newer than
`as_of` (older ones are taken to be in the data the snapshot was built
from), each log in its order, the logs of several servers merged by
timestamp. The store itself may then lose everything (a
Redis restart without persistence) and be rebuilt with nothing lost:

    python -m serving.history_journal --history_dir DIR \\
        --history_store redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import heapq
import json
import os
import socket
import threading
from typing import Iterable, Iterator, Mapping, Optional

from data import storage
from serving import history_store

SNAPSHOT_FILE = "snapshot.jsonl"
EVENT_LOG_PREFIX = "events-"
EVENT_LOG_SUFFIX = ".jsonl"
_AS_OF = "as_of"
_USER_ID = "user_id"
_ITEM_ID = "item_id"
_ITEM_IDS = "item_ids"
_TIMESTAMP = "timestamp"
_TIMESTAMPS = "timestamps"

# (user_id, item_id, timestamp), as the event RPC accepts them.
Event = tuple[str, str, int]


@dataclasses.dataclass(frozen=True)
class Snapshot:
  """Every user's history as of a push.

  Attributes:
    as_of: the newest timestamp of the data the histories come from.
    histories: by user id.
  """
  as_of: int
  histories: Mapping[str, history_store.UserHistory]


def snapshot_path(history_dir: str) -> str:
  return storage.join(history_dir, SNAPSHOT_FILE)


def event_log_path(history_dir: str, writer: str) -> str:
  return os.path.join(history_dir,
                      f"{EVENT_LOG_PREFIX}{writer}{EVENT_LOG_SUFFIX}")


def write_snapshot(history_dir: str, snapshot: Snapshot) -> str:
  """Writes `snapshot.jsonl` (a local path or a URI); returns its path."""
  lines = [json.dumps({_AS_OF: snapshot.as_of,
                       "users": len(snapshot.histories)})]
  lines += [json.dumps({_USER_ID: user_id,
                        _ITEM_IDS: list(history.item_ids),
                        _TIMESTAMPS: list(history.timestamps)})
            for user_id, history in snapshot.histories.items()]
  storage.makedirs(history_dir)
  path = snapshot_path(history_dir)
  storage.write_text(path, "\n".join(lines) + "\n")
  return path


def read_snapshot(history_dir: str) -> Snapshot:
  """Reads `snapshot.jsonl`.

  Raises:
    FileNotFoundError: if no snapshot was written there.
  """
  lines = storage.read_text(snapshot_path(history_dir)).splitlines()
  header = json.loads(lines[0])
  histories = {}
  for line in lines[1:]:
    row = json.loads(line)
    histories[row[_USER_ID]] = history_store.UserHistory(
        tuple(row[_ITEM_IDS]), tuple(int(t) for t in row[_TIMESTAMPS]))
  return Snapshot(int(header[_AS_OF]), histories)


class EventLog:
  """The append-only log of accepted events, one JSON line each.

  Each append is flushed to the operating system before it returns, so a
  killed server process loses no accepted event (a machine crash may lose
  the last ones the OS had not written yet). Each writer has a file of its
  own, so that servers sharing the directory (replicas on a shared volume)
  never interleave their writes.

  Args:
    history_dir: where the snapshot is.
    writer: names this writer's file; the host name by default.
  """

  def __init__(self, history_dir: str, writer: Optional[str] = None):
    os.makedirs(history_dir, exist_ok=True)
    self.path = event_log_path(history_dir, writer or socket.gethostname())
    self._lock = threading.Lock()
    self._file = open(self.path, "a", encoding="utf-8")  # pylint: disable=consider-using-with

  def append(self, events: Iterable[Event]) -> None:
    text = "".join(
        json.dumps({_USER_ID: user_id, _ITEM_ID: item_id,
                    _TIMESTAMP: int(timestamp)}) + "\n"
        for user_id, item_id, timestamp in events)
    with self._lock:
      self._file.write(text)
      self._file.flush()

  def close(self) -> None:
    with self._lock:
      self._file.close()


def _read_log(path: str) -> Iterator[Event]:
  with open(path, encoding="utf-8") as log:
    for line in log:
      if line.strip():
        row = json.loads(line)
        yield row[_USER_ID], row[_ITEM_ID], int(row[_TIMESTAMP])


def read_events(history_dir: str) -> Iterator[Event]:
  """Every logged event: each writer's in its log order, the writers'
  merged by timestamp (one writer's log comes back exactly in order)."""
  paths = sorted(glob.glob(os.path.join(
      glob.escape(history_dir), f"{EVENT_LOG_PREFIX}*{EVENT_LOG_SUFFIX}")))
  return heapq.merge(*map(_read_log, paths), key=lambda event: event[2])


def rebuilt_histories(history_dir: str, max_items: int,
                      ) -> dict[str, history_store.UserHistory]:
  """The snapshot's histories with the events newer than it appended."""
  snapshot = read_snapshot(history_dir)
  histories = dict(snapshot.histories)
  for user_id, item_id, timestamp in read_events(history_dir):
    if timestamp > snapshot.as_of:
      histories[user_id] = histories.get(
          user_id, history_store.EMPTY_HISTORY).appended(
              item_id, timestamp, max_items)
  return histories


def rebuild(store: history_store.HistoryStore, history_dir: str) -> int:
  """Makes `store` hold the snapshot plus the events since; returns how many
  users it holds.

  Events accepted while this runs may be missing from the store until the
  next rebuild (they are in the log): run it before the server takes events,
  or again after.

  Raises:
    FileNotFoundError: without a snapshot.
    StoreUnavailableError: if the store cannot be written.
  """
  histories = rebuilt_histories(history_dir, store.max_items)
  store.replace_all(histories)
  return len(histories)


def rebuild_store(store_url: str, history_dir: str,
                  max_items: int = history_store.DEFAULT_MAX_ITEMS) -> int:
  """`rebuild` on the store a URL names, opened and closed here."""
  store = history_store.open_store(store_url, max_items)
  try:
    return rebuild(store, history_dir)
  finally:
    store.close()


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m serving.history_journal",
      description="Rebuilds the user-history store from the last push's "
                  "snapshot plus the events logged since.")
  parser.add_argument("--history_dir", required=True,
                      help=f"holds {SNAPSHOT_FILE} and the event logs")
  parser.add_argument("--history_store", required=True,
                      help="sqlite:///path or redis://host:port/db")
  flags = parser.parse_args(argv)
  users = rebuild_store(flags.history_store, flags.history_dir)
  print(f"{flags.history_store}: {users} users from {flags.history_dir}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
