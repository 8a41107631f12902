"""Rebuilding the history store: the snapshot plus, in log order, the
logged events newer than it."""

from __future__ import annotations

from serving import history_journal
from serving import history_store
from serving.history_store import UserHistory


def _journal(directory) -> None:
  history_journal.write_snapshot(str(directory), history_journal.Snapshot(
      as_of=100, histories={"u1": UserHistory(("a", "b"), (90, 100)),
                            "u2": UserHistory(("c",), (50,))}))
  log = history_journal.EventLog(str(directory))
  # u1's "b" at 100 is already in the snapshot's data; later ones are not.
  log.append([("u1", "b", 100), ("u1", "d", 120), ("u3", "e", 101)])
  log.append([("u1", "f", 110)])
  log.close()


def test_snapshot_reads_back(tmp_path):
  _journal(tmp_path)
  snapshot = history_journal.read_snapshot(str(tmp_path))
  assert snapshot.as_of == 100
  assert snapshot.histories == {"u1": UserHistory(("a", "b"), (90, 100)),
                                "u2": UserHistory(("c",), (50,))}


def test_rebuilt_histories_append_newer_events_in_log_order(tmp_path):
  _journal(tmp_path)
  assert history_journal.rebuilt_histories(str(tmp_path), max_items=3) == {
      "u1": UserHistory(("b", "d", "f"), (100, 120, 110)),
      "u2": UserHistory(("c",), (50,)),
      "u3": UserHistory(("e",), (101,))}


def test_logs_of_several_writers_merge_by_timestamp(tmp_path):
  first = history_journal.EventLog(str(tmp_path), writer="pod-a")
  second = history_journal.EventLog(str(tmp_path), writer="pod-b")
  first.append([("u1", "a", 5), ("u1", "b", 9)])
  second.append([("u2", "d", 1), ("u1", "c", 7)])
  first.close()
  second.close()

  assert list(history_journal.read_events(str(tmp_path))) == [
      ("u2", "d", 1), ("u1", "a", 5), ("u1", "c", 7), ("u1", "b", 9)]


def test_rebuild_replaces_what_the_store_held(tmp_path):
  _journal(tmp_path)
  store = history_store.open_store(f"sqlite:///{tmp_path / 'h.db'}")
  store.append([("stale", "x", 1), ("u2", "y", 2)])

  assert history_journal.main([f"--history_dir={tmp_path}",
                               f"--history_store={store.url}"]) == 0

  assert store.read(["stale", "u1", "u2", "u3"]) == [
      None, UserHistory(("a", "b", "d", "f"), (90, 100, 120, 110)),
      UserHistory(("c",), (50,)), UserHistory(("e",), (101,))]
