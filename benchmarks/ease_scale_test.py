"""Tests for the EASE^R scale benchmark, on a tiny synthetic log."""

import json

import numpy as np
import pandas as pd

from benchmarks import ease_scale


def test_a_tiny_run_fits_exact_and_approximate_and_states_the_ratio(tmp_path):
  output = tmp_path / "ease_scale.json"
  ease_scale.main(["--quality", "--scale", "300", "--interactions", "3000",
                   "--exact_up_to", "300", "--supports", "16", "--timeout_s",
                   "300", "--output", str(output)])
  payload = json.loads(output.read_text())
  exact, approx = payload["points"]
  assert (exact["solver"], approx["solver"]) == ("exact", "sparse_approx")
  for point in (exact, approx):
    assert point["status"] == "ok"
    assert point["items"] == 300 and point["positives"] > 0
    assert point["peak_rss_mib"] > 0 and point["fit_peak_rss_mib"] > 0
  assert approx["fit_s_over_exact"] == round(
      approx["fit_s"] / exact["fit_s"], 3)
  assert len(payload["machine"]["load_average"]) == 3


def test_video_games_hold_out_one_positive_per_user_in_one_catalogue(
    tmp_path):
  for domain, rows in (("game_video", [(1, 10), (1, 11), (2, 10)]),
                       ("video_game", [(1, 10), (3, 12), (3, 13)])):
    (tmp_path / domain).mkdir()
    pd.DataFrame([(user, item, 1) for user, item in rows]).to_csv(
        tmp_path / domain / "new_reindex.txt", sep="\t", header=False,
        index=False)
  split, num_items = ease_scale.video_games_split(tmp_path)
  # Items 10 of both domains are two items: 5 items, then padding.
  assert num_items == 6
  # User 2 has one positive and is left out; users 1 and 3 keep all but one.
  assert [len(history) for history in split.histories] == [2, 1]
  for history, target in zip(split.histories, split.targets):
    assert target not in history and 0 not in history
  np.testing.assert_array_equal(
      sorted(np.concatenate(split.histories + [split.targets])),
      [1, 2, 3, 4, 5])
