"""Requests answered from the online history store, over real gRPC, on the
SQLite and the Redis store: a user id alone, the seen-items filter and its
off switch, the unknown user, the event RPC, the store down, and a killed
Redis rebuilt from the snapshot and the event log with nothing lost.

The served model is the tiny `HistoryTestModel`, whose query adds the
history's item embeddings, so every answer says which history the query
tower got (`testing_models.history_query`).
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from typing import Iterator, Optional

import grpc
import pytest
import tensorflow as tf

from data import features
from models import serving_names
from serving import client
from serving import history_journal
from serving import history_store
from serving import server
from serving import testing_redis
from serving.history_store import UserHistory
from serving.testing_grpc import (Stubs, assert_rpc_error, exact_top_k,
                                  local_only, open_stubs, retrieved,
                                  serve_version_1)
from serving.testing_models import ITEM_IDS, MODEL_NAME, history_query
from tests import prerequisites

pytestmark = local_only

# Newest items the query tower is given: fewer than user_a has stored, so
# the filter (every stored item) and the tower (the newest two) differ.
HISTORY_LENGTH = 2
SNAPSHOT = history_journal.Snapshot(as_of=1_000, histories={
    "user_a": UserHistory(("item_1", "item_2", "item_3"), (10, 20, 30)),
    "user_b": UserHistory(("item_4",), (40,))})
K = 5


def _scann_request(user_id: str, history: Optional[list[str]] = None,
                   k: int = K, **kwargs):
  """A `retrieve_scann` request; without history it sends no timestamp
  either, both left to the server."""
  request = client.retrieval_request(
      MODEL_NAME, user_id, history, 1_700_000_000, k,
      serving_names.RETRIEVE_SCANN, **kwargs)
  if history is None:
    del request.inputs[features.TIMESTAMP]
  return request


def _source(response) -> list[str]:
  return [value.decode() for value in tf.make_ndarray(
      response.outputs[serving_names.HISTORY_SOURCE])]


class Served:
  """A server with a history store, and what the tests need of it."""

  def __init__(self, handle: server.ServerHandle, stubs: Stubs,
               store_url: str, history_dir: pathlib.Path):
    self.handle = handle
    self.stubs = stubs
    self.store_url = store_url
    self.history_dir = history_dir

  def predict(self, request):
    return self.stubs.prediction.Predict(request, timeout=10)

  def stored(self, user_ids: list[str]) -> list[Optional[UserHistory]]:
    store = history_store.open_store(self.store_url)
    try:
      return store.read(user_ids)
    finally:
      store.close()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store_url(request, tmp_path_factory) -> str:
  if request.param == "sqlite":
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'histories.db'}"
  return request.getfixturevalue("redis_process").url


def _seeded(store_url: str, history_dir: pathlib.Path) -> None:
  """The push's snapshot in `history_dir`, loaded into the store."""
  history_journal.write_snapshot(str(history_dir), SNAPSHOT)
  history_journal.rebuild_store(store_url, str(history_dir))


@contextlib.contextmanager
def _serving(template: pathlib.Path, base: pathlib.Path,
             store_url: str) -> Iterator[Served]:
  history_dir = base / "history"
  _seeded(store_url, history_dir)
  with serve_version_1(template, base / "models", history_store=store_url,
                       history_dir=str(history_dir),
                       history_length=HISTORY_LENGTH) as handle, \
      open_stubs(handle.address) as stubs:
    yield Served(handle, stubs, store_url, history_dir)


@pytest.fixture(scope="module")
def served(history_model_template, store_url,
           tmp_path_factory) -> Iterator[Served]:
  with _serving(history_model_template, tmp_path_factory.mktemp("served"),
                store_url) as opened:
    yield opened


# ------------------------------------------------------------- requests ---


def test_user_id_alone_is_answered_from_the_stored_history(served):
  response = served.predict(_scann_request("user_a"))

  ids, _ = retrieved(response)
  # The tower got the newest two items; the filter left out all three.
  query = history_query("user_a", ["item_2", "item_3"])
  assert ids == exact_top_k(query, K, {"item_1", "item_2", "item_3"})[0]
  assert _source(response) == [serving_names.HISTORY_FROM_STORE]


def test_request_with_its_own_history_is_answered_as_before(served):
  response = served.predict(_scann_request("user_a", ["item_5"]))

  ids, _ = retrieved(response)
  assert ids == exact_top_k(history_query("user_a", ["item_5"]), K,
                            {"item_5"})[0]
  assert serving_names.HISTORY_SOURCE not in response.outputs


def test_filter_seen_off_returns_the_stored_items(served):
  every_item = len(ITEM_IDS)
  filtered, _ = retrieved(served.predict(_scann_request("user_a",
                                                        k=every_item)))
  unfiltered, _ = retrieved(served.predict(
      _scann_request("user_a", k=every_item, filter_seen=False)))

  query = history_query("user_a", ["item_2", "item_3"])
  assert unfiltered == exact_top_k(query, every_item, set())[0]
  assert filtered[:-3] == exact_top_k(query, every_item - 3,
                                      {"item_1", "item_2", "item_3"})[0]
  assert filtered[-3:] == ["", "", ""]


def test_unknown_user_gets_the_cold_start_path(served):
  response = served.predict(_scann_request("stranger"))

  ids, _ = retrieved(response)
  assert ids == exact_top_k(history_query("stranger", []), K, set())[0]
  assert _source(response) == [serving_names.HISTORY_COLD_START]


def test_a_batch_mixes_stored_and_unknown_users(served):
  request = _scann_request("user_b")
  request.inputs[features.USER_ID].CopyFrom(
      tf.make_tensor_proto(["user_b", "stranger"], dtype=tf.string))

  assert _source(served.predict(request)) == [
      serving_names.HISTORY_FROM_STORE, serving_names.HISTORY_COLD_START]


def test_in_graph_retrieval_reads_the_store_too(served):
  request = _scann_request("user_a")
  request.model_spec.signature_name = serving_names.DEFAULT
  del request.inputs[serving_names.SCANN_K]

  response = served.predict(request)

  # The graph leaves out the history it is given: the newest two items.
  ids, _ = retrieved(response)
  assert ids == exact_top_k(history_query("user_a", ["item_2", "item_3"]),
                            10, {"item_2", "item_3"})[0]
  assert _source(response) == [serving_names.HISTORY_FROM_STORE]


# --------------------------------------------------------------- events ---


def test_an_event_is_seen_by_the_next_request_within_a_second(served):
  best = exact_top_k(history_query("newcomer", []), 1, set())[0][0]

  started = time.monotonic()
  client.append_event(served.handle.address, "newcomer", best)
  response = served.predict(_scann_request("newcomer"))
  elapsed_s = time.monotonic() - started

  ids, _ = retrieved(response)
  assert elapsed_s < 1.0
  assert _source(response) == [serving_names.HISTORY_FROM_STORE]
  assert ids == exact_top_k(history_query("newcomer", [best]), K, {best})[0]
  assert [event[:2] for event in history_journal.read_events(
      str(served.history_dir))][-1] == ("newcomer", best)


def test_malformed_events_are_invalid(served):
  request = client.events_request(["user_a", "user_b"], ["item_1"])
  with grpc.insecure_channel(served.handle.address) as channel:
    assert_rpc_error(
        lambda: client.append_events_method(channel)(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT, "one of each per event")


def test_cli_recommends_from_the_store_and_records_events(served, capsys):
  flags = [f"--address={served.handle.address}", f"--model_name={MODEL_NAME}",
           "--user_id=cli_user"]
  assert client.main(flags + ["--append_event=item_7"]) == 0
  assert client.main(flags + [f"--signature={serving_names.RETRIEVE_SCANN}",
                              "--k=3"]) == 0

  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == "recorded: user cli_user item item_7"
  assert lines[1].endswith(f"; history: {serving_names.HISTORY_FROM_STORE}")
  assert [line.split()[1] for line in lines[2:]] == exact_top_k(
      history_query("cli_user", ["item_7"]), 3, {"item_7"})[0]


def test_without_a_store_the_history_stays_required(model_template,
                                                    tmp_path):
  with serve_version_1(model_template, tmp_path) as handle, \
      open_stubs(handle.address) as stubs:
    request = _scann_request("user_a")
    request.model_spec.signature_name = serving_names.DEFAULT
    del request.inputs[serving_names.SCANN_K]
    assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10),
                     grpc.StatusCode.INVALID_ARGUMENT,
                     f"missing ['{features.HISTORY_ITEM_IDS}'")
    assert_rpc_error(
        lambda: client.append_event(handle.address, "user_a", "item_1"),
        grpc.StatusCode.UNIMPLEMENTED)


def test_flags_map_onto_the_config():
  config = server.parse_flags([
      "--model_base_path=/models", "--history_store=redis://r:6379/0",
      "--history_dir=/history", "--history_length=20"])
  assert (config.history_store, config.history_dir,
          config.history_length) == ("redis://r:6379/0", "/history", 20)


def test_a_history_dir_needs_a_store(capsys):
  with pytest.raises(SystemExit):
    server.parse_flags(["--model_base_path=/m", "--history_dir=/history"])
  assert "--history_dir needs --history_store" in capsys.readouterr().err


# ---------------------------------------------------- the store failing ---


@pytest.fixture
def own_redis(tmp_path) -> Iterator[testing_redis.RedisProcess]:
  """A Redis of this test's own, which it may kill."""
  with testing_redis.redis_server(prerequisites.program("redis-server"),
                                  tmp_path / "redis") as process:
    yield process


def test_store_down_is_unavailable_but_a_request_with_history_is_served(
    history_model_template, own_redis, tmp_path):
  with _serving(history_model_template, tmp_path, own_redis.url) as served:
    own_redis.kill()

    assert_rpc_error(lambda: served.predict(_scann_request("user_a")),
                     grpc.StatusCode.UNAVAILABLE,
                     f"history store {own_redis.url} is unavailable",
                     f"sends {features.HISTORY_ITEM_IDS}")
    assert_rpc_error(
        lambda: client.append_event(served.handle.address, "user_a", "item_9"),
        grpc.StatusCode.UNAVAILABLE, "no event was recorded")
    ids, _ = retrieved(served.predict(_scann_request("user_a", ["item_5"])))
    assert ids == exact_top_k(history_query("user_a", ["item_5"]), K,
                              {"item_5"})[0]
    assert list(history_journal.read_events(str(served.history_dir))) == []


def test_a_killed_store_is_rebuilt_with_nothing_lost(
    history_model_template, own_redis, tmp_path):
  users = ["user_a", "user_b", "newcomer"]
  with _serving(history_model_template, tmp_path, own_redis.url) as served:
    for user_id, item_id in [("user_a", "item_9"), ("newcomer", "item_8"),
                             ("user_a", "item_10"), ("newcomer", "item_11")]:
      client.append_event(served.handle.address, user_id, item_id)
    before = served.stored(users)
    answers = [retrieved(served.predict(_scann_request(user_id)))[0]
               for user_id in users]

    own_redis.kill()
    own_redis.start()
    assert served.stored(users) == [None, None, None]
    assert history_journal.main([f"--history_dir={served.history_dir}",
                                 f"--history_store={own_redis.url}"]) == 0

    assert served.stored(users) == before
    assert before[0].item_ids == ("item_1", "item_2", "item_3", "item_9",
                                  "item_10")
    assert [retrieved(served.predict(_scann_request(user_id)))[0]
            for user_id in users] == answers
