"""The history snapshot written after a push: each user's newest positives
in time order, as the examples order them, and the store rebuilt from it."""

from __future__ import annotations

from serving import history_journal
from serving import history_store
from serving.history_store import UserHistory
from tfx_pipeline import history_writer

# Out of time order in the file; u1's "a" at 10 is logged twice, its "x" is
# a negative (label 0); u2 has one positive.
INTERACTIONS = """user_id,item_id,timestamp,label
u1,c,30,1
u1,a,10,1
u2,z,5,1
u1,x,40,0
u1,a,10,1
u1,b,20,1
u1,d,35,1
"""


def _dataset_dir(tmp_path):
  directory = tmp_path / "data"
  directory.mkdir()
  (directory / "interactions.csv").write_text(INTERACTIONS)
  return directory


def test_snapshot_holds_each_users_newest_positives_in_time_order(tmp_path):
  snapshot = history_writer.write_histories(str(_dataset_dir(tmp_path)),
                                            str(tmp_path / "history"),
                                            max_items=3)

  assert snapshot == history_journal.Snapshot(as_of=40, histories={
      "u1": UserHistory(("b", "c", "d"), (20, 30, 35)),
      "u2": UserHistory(("z",), (5,))})
  assert history_journal.read_snapshot(str(tmp_path / "history")) == snapshot


def test_main_rebuilds_the_store_from_the_snapshot(tmp_path, capsys):
  store_url = f"sqlite:///{tmp_path / 'h.db'}"
  assert history_writer.main([
      f"--dataset_dir={_dataset_dir(tmp_path)}",
      f"--history_dir={tmp_path / 'history'}",
      f"--history_store={store_url}"]) == 0

  assert history_store.open_store(store_url).read(["u1", "u2"]) == [
      UserHistory(("a", "b", "c", "d"), (10, 20, 30, 35)),
      UserHistory(("z",), (5,))]
  assert "2 users' histories as of 40" in capsys.readouterr().out
