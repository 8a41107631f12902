"""The two history stores keep the same histories: known events in, the
same newest items out, in order; a store that cannot be reached raises
StoreUnavailableError."""

from __future__ import annotations

import time

import pytest
import redis

from serving import history_store
from serving.history_store import UserHistory
from serving.testing_grpc import free_port


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
  if request.param == "sqlite":
    opened = history_store.open_store(f"sqlite:///{tmp_path / 'h.db'}",
                                      max_items=3)
  else:
    redis_process = request.getfixturevalue("redis_process")
    opened = history_store.open_store(redis_process.url, max_items=3)
    opened.replace_all({})
  yield opened
  opened.close()


def test_unknown_user_reads_none(store):
  assert store.read(["nobody"]) == [None]


def test_appended_events_read_back_newest_last_cut_to_max_items(store):
  store.append([("u1", "a", 1), ("u2", "x", 5), ("u1", "b", 2)])
  store.append([("u1", "c", 3), ("u1", "d", 4)])

  assert store.read(["u1", "u2", "u3"]) == [
      UserHistory(("b", "c", "d"), (2, 3, 4)), UserHistory(("x",), (5,)),
      None]


def test_replace_all_holds_exactly_the_given_histories(store):
  store.append([("old", "a", 1), ("u1", "z", 9)])

  store.replace_all({"u1": UserHistory(("p", "q", "r", "s"), (1, 2, 3, 4)),
                     "u2": UserHistory(("t",), (7,))})

  assert store.read(["old", "u1", "u2"]) == [
      None, UserHistory(("q", "r", "s"), (2, 3, 4)), UserHistory(("t",), (7,))]


def test_redis_without_a_server_is_unavailable_within_the_timeout():
  store = history_store.open_store(f"redis://127.0.0.1:{free_port()}/0",
                                   timeout_s=0.2)
  started = time.monotonic()
  with pytest.raises(history_store.StoreUnavailableError,
                     match="history store redis://.* is unavailable"):
    store.read(["u1"])
  with pytest.raises(history_store.StoreUnavailableError):
    store.append([("u1", "a", 1)])
  assert time.monotonic() - started < 2


def test_sqlite_file_that_is_not_a_database_is_unavailable(tmp_path):
  path = tmp_path / "h.db"
  path.write_bytes(b"not a database" * 100)
  with pytest.raises(history_store.StoreUnavailableError,
                     match="history store sqlite:///.* is unavailable"):
    history_store.open_store(f"sqlite:///{path}").read(["u1"])


def test_unknown_scheme_is_refused():
  with pytest.raises(ValueError, match="sqlite:///path or redis://"):
    history_store.open_store("memcached://127.0.0.1:11211")


def test_redis_keeps_only_the_newest_max_items_per_user(redis_process):
  store = history_store.open_store(redis_process.url, max_items=2)
  store.replace_all({})
  store.append([("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3)])

  # What a user holds in Redis stays bounded, not only what is read.
  assert redis.Redis.from_url(redis_process.url).llen(
      "vrec:history:u1") == 2
