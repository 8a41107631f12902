"""Tests for GMN's dual-graph data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data import dual_graph
from data import importers


def _log():
  rows = [
      ("u1", "video:1", 0, "video"), ("u1", "video:2", 1, "video"),
      ("u1", "video:3", 2, "video"), ("u1", "item:1", 3, "item"),
      ("u2", "video:2", 4, "video"), ("u2", "video:3", 5, "video"),
      ("u2", "item:1", 6, "item"), ("u2", "item:2", 7, "item"),
      ("u3", "video:1", 8, "video"), ("u3", "video:2", 9, "video"),
  ]
  return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "item_type"])


def test_vocabulary_puts_videos_first_after_padding():
  vocabulary = dual_graph.node_vocabulary(_log())
  assert vocabulary.num_videos == 3 and vocabulary.size == 6
  np.testing.assert_array_equal(
      vocabulary.lookup(["video:1", "video:3", "item:1", "item:2"]), [1, 3, 4, 5])
  with pytest.raises(KeyError):
    vocabulary.lookup(["video:9"])


def test_recent_neighbours_keep_the_newest_oldest_first():
  log = _log()
  graph = dual_graph.build_dual_graph(
      log, dual_graph.node_vocabulary(log),
      dual_graph.DualGraphConfig(max_video_neighbours=2, max_item_neighbours=3))
  np.testing.assert_array_equal(graph.user_ids, ["u1", "u2", "u3"])
  np.testing.assert_array_equal(graph.video_neighbours, [[2, 3], [2, 3], [1, 2]])
  np.testing.assert_array_equal(graph.item_neighbours,
                                [[4, 0, 0], [4, 5, 0], [0, 0, 0]])


def test_sampled_neighbours_are_a_seeded_subset_in_time_order():
  user_rows = np.zeros(10, np.int64)
  nodes = np.arange(1, 11)
  keys = np.arange(10)[::-1]
  first = dual_graph.bounded_neighbours(user_rows, nodes, keys, 1, 4,
                                        dual_graph.ORDER_SAMPLED, seed=3)
  again = dual_graph.bounded_neighbours(user_rows, nodes, keys, 1, 4,
                                        dual_graph.ORDER_SAMPLED, seed=3)
  np.testing.assert_array_equal(first, again)
  assert len(set(first[0])) == 4 and set(first[0]) <= set(nodes)
  # Keys run backwards, so time order is descending node index.
  assert list(first[0]) == sorted(first[0], reverse=True)


def test_shared_only_split_holds_out_only_shared_users_videos():
  log = _log()
  train, heldout = dual_graph.split_user_videos(log, fraction=0.5, seed=0,
                                                shared_only=True)
  assert set(heldout["user_id"]) == {"u1", "u2"}
  assert (heldout["item_type"] == "video").all()
  assert len(train) + len(heldout) == len(log)
  assert (train["item_type"] == "item").sum() == 3
  again = dual_graph.split_user_videos(log, fraction=0.5, seed=0,
                                       shared_only=True)[1]
  pd.testing.assert_frame_equal(heldout, again)


def test_whole_graph_split_keeps_a_video_of_every_user():
  # u4 watched one video and u5 none: neither can lose one.
  log = pd.concat([_log(), pd.DataFrame(
      [("u4", "video:1", 10, "video"), ("u4", "item:2", 11, "item"),
       ("u5", "item:1", 12, "item")],
      columns=["user_id", "item_id", "timestamp", "item_type"])],
                  ignore_index=True)
  train, heldout = dual_graph.split_user_videos(log, fraction=0.5, seed=0)
  # u3 has no items but two videos: held out too, unlike the shared split.
  assert set(heldout["user_id"]) == {"u1", "u2", "u3"}
  assert (heldout["item_type"] == "video").all()
  assert heldout.groupby("user_id").size().to_dict() == {"u1": 2, "u2": 1,
                                                         "u3": 1}
  train_videos = train[train["item_type"] == "video"]
  assert set(train_videos["user_id"]) == {"u1", "u2", "u3", "u4"}
  pd.testing.assert_frame_equal(pd.concat([train, heldout]).sort_index(), log)


def test_user_slices_bin_train_videos_and_items():
  rows = [("thin", f"video:{k}", k, "video") for k in range(2)]
  rows += [("thin", "item:1", 9, "item"), ("mid", "video:1", 0, "video")]
  rows += [("mid", f"video:{k}", k, "video") for k in range(2, 5)]
  rows += [("rich", f"video:{k}", k, "video") for k in range(10)]
  rows += [("rich", "item:2", 9, "item")]
  train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp",
                                      "item_type"])
  slices = dual_graph.user_slices(train, ["rich", "thin", "mid", "none"])
  assert {name: mask.tolist() for name, mask in slices.items()} == {
      "all": [True, True, True, True],
      "videos 0-2": [False, True, False, True],
      "videos 3-9": [False, False, True, False],
      "videos 10+": [True, False, False, False],
      "with items": [True, True, False, False],
      "without items": [False, False, True, True],
      "videos 0-2, with items": [False, True, False, False]}


def test_unknown_item_type_is_rejected():
  log = _log().assign(item_type="clip")
  with pytest.raises(ValueError, match="item_type"):
    dual_graph.node_vocabulary(log)


def test_video_games_importer_types_and_prefixes_each_domain(tmp_path):
  for domain, rows in (("game_video", "1\t0\t1\n1\t5\t1\n"),
                       ("video_game", "1\t5\t1\n2\t0\t1\n")):
    folder = tmp_path / "amazon-video-games" / domain
    folder.mkdir(parents=True)
    (folder / "new_reindex.txt").write_text(rows)
  log = importers.IMPORTERS["amazon-video-games"](tmp_path).interactions
  assert list(log["item_id"]) == ["video:0", "video:5", "item:5", "item:0"]
  assert list(log["item_type"]) == ["video", "video", "item", "item"]
  assert list(log["timestamp"]) == [0, 1, 0, 1]
  swapped = importers.IMPORTERS["amazon-video-games-swapped"](tmp_path).interactions
  assert list(swapped["item_id"]) == ["item:0", "item:5", "video:5", "video:0"]
