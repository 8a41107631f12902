"""Tests for the GMN benchmark: its closed-form rows, its verdict and a
smoke run of every kind of row on a tiny dual graph."""

import dataclasses
import json
import types

import numpy as np
import pandas as pd
import pytest

from benchmarks import gmn
from benchmarks import gmn_baselines
from benchmarks import gmn_setup
from data import dual_graph
from models.item_item import fitters as item_item_fitters

_PAIRS = 30
# The split fields `gmn.SPLIT_KEYS` compares, of a made-up run.
_SPLIT = {"dataset": "d", "split": "s", "split_seed": 0,
          "slice_users": {"all": 5}, "test_videos": 7, "validation_videos": 3}


def _rows(user, nodes):
  return [{"user_id": user, "item_id": node, "timestamp": 0,
           "item_type": node.split(":")[0]} for node in nodes]


@pytest.fixture(scope="module")
def planted():
  """Item i_k is bought by the watchers of video v_k; nothing else links
  videos, so only a row that reads the item side can find v_k.

  - teacher k: watched v_k, bought i_k.
  - validator k: watched v_k (its validation video) and f_k, bought i_k.
  - eval user k: watched w_k (which nobody else watched), bought i_k, and
    v_k is held out.
  """
  train, heldout, validation = [], [], []
  for k in range(_PAIRS):
    train += _rows(f"teacher{k}", [f"video:v{k}", f"item:i{k}"])
    validation += _rows(f"validator{k}", [f"video:v{k}"])
    train += validation[-1:] + _rows(f"validator{k}",
                                     [f"video:f{k}", f"item:i{k}"])
    train += _rows(f"eval{k}", [f"video:w{k}", f"item:i{k}"])
    heldout += _rows(f"eval{k}", [f"video:v{k}"])
  train = pd.DataFrame(train)
  heldout = pd.DataFrame(heldout, index=np.arange(len(heldout)) + len(train))
  validation = train[train["user_id"].str.startswith("validator")
                     & train["item_id"].str.startswith("video:v")]
  return gmn_setup.build(pd.concat([train, heldout]), train, heldout,
                         validation, dual_graph.DualGraphConfig(4, 4))


@pytest.mark.parametrize("family", ["ease", "item_knn"])
def test_only_the_both_sides_rows_reach_videos_through_items(planted, family):
  videos_only, _ = gmn_baselines.classical(planted, family)
  both_sides, chosen = gmn_baselines.classical(planted, f"{family}_both_sides")
  videos_only, both_sides = videos_only["all"], both_sides["all"]
  # Videos only: w_k shares no user with any video, so every candidate
  # ties at 0 and ties count against the target.
  assert videos_only["recall@50"] == 0.0
  assert both_sides["recall@20"] == 1.0
  assert both_sides["ndcg@20"] == pytest.approx(1.0)
  assert len(planted.validation_set.rows) == _PAIRS
  assert len(chosen["validation"]) == len(
      gmn_baselines.item_item.search_settings(family))


def test_validation_videos_are_left_out_of_the_tuning_fit_only(planted,
                                                              monkeypatch):
  family = item_item_fitters.FITTERS["item_knn"]
  fitted = []
  monkeypatch.setitem(item_item_fitters.FITTERS, "item_knn", dataclasses.replace(
      family, fit=lambda train, config: fitted.append(train)
      or family.fit(train, config)))
  gmn_baselines.classical(planted, "item_knn_both_sides")
  # Every setting is fitted on the tuning rows, then the chosen one on all.
  tuning_fit, final_fit = fitted[0], fitted[-1]
  rows = planted.graph.user_rows(planted.validation["user_id"])
  videos = planted.vocabulary.lookup(planted.validation["item_id"])
  assert not tuning_fit[rows, videos].any()
  assert final_fit[rows, videos].min() == 1
  assert final_fit.sum() - tuning_fit.sum() == len(planted.validation)


def _row(mean, std):
  return {"mean": {"all": {metric: {"mean": mean, "std": std}
                           for metric in gmn_setup.METRICS}}}


def test_verdict_names_the_strongest_baseline_and_who_beats_it_beyond_std():
  rows = {"most_popular": _row(0.03, 0.0), "ease": _row(0.05, 0.0),
          "lightgcn_joint": _row(0.04, 0.0),
          "b_pooled_both_sides": _row(0.055, 0.001),
          "c_node_level_only": _row(0.058, 0.005),
          "e_full_gmn": _row(0.06, 0.004)}
  assert gmn.verdict(rows, "all") == {
      "strongest_baseline": "b_pooled_both_sides", "recall@20": 0.055,
      "gmn_beats_it": True, "variants_above": ["e_full_gmn"]}


def _tiny_log():
  """40 users over 16 videos and 6 items; user k watches k % 16 + 1 videos
  (a few users with one, so they hold none out) and half of them buy."""
  rng = np.random.default_rng(0)
  rows = []
  for user in range(40):
    videos = rng.choice(16, size=user % 16 + 1, replace=False)
    rows += _rows(f"u{user}", [f"video:v{video}" for video in videos])
    if user % 2:
      rows += _rows(f"u{user}", [f"item:i{item}" for item in
                                 rng.choice(6, size=3, replace=False)])
  return pd.DataFrame(rows).assign(timestamp=lambda frame: np.arange(
      len(frame)))


def test_smoke_run_scores_every_kind_of_row_on_every_slice(monkeypatch):
  log = _tiny_log()
  monkeypatch.setattr(gmn.common, "load_interactions",
                      lambda *_: types.SimpleNamespace(interactions=log))
  args = gmn.parse_args([
      "--dataset", "amazon-books-movies", "--seeds", "0", "1",
      "--max_epochs", "2", "--patience", "1", "--batch_size", "16",
      "--embedding_dim", "8", "--max_neighbours", "4",
      "--lightgcn_layers", "1", "2", "--lightgcn_dims", "8",
      "--lightgcn_l2", "1e-4", "--lightgcn_batch_size", "32",
      "--lightgcn", "lightgcn_joint", "--variants", "e_full_gmn",
      "--classical", "item_knn_both_sides",
      "--gmn_learning_rates", "0.003", "0.01", "--gmn_layers", "2", "1"])
  result = gmn.run_dataset(args, "tiny", "amazon-books-movies")
  rows = result["rows"]
  assert list(rows) == ["most_popular", "item_knn_both_sides",
                        "lightgcn_joint", "e_full_gmn"]
  users = result["slice_users"]
  assert users["all"] == sum(users[f"videos {bin_}"]
                             for bin_ in ("0-2", "3-9", "10+"))
  assert users["all"] == users["with items"] + users["without items"]
  for name, row in rows.items():
    assert set(row["mean"]) == set(users)
    assert set(row["mean"]["all"]) == set(gmn_setup.METRICS)
    assert row["timing"]["train_seconds"]["mean"] >= row["timing"][
        "seconds_to_quality"]["mean"]
  # Neural rows run every seed; deterministic rows stand for all.
  assert [run["seed"] for run in rows["e_full_gmn"]["runs"]] == [0, 1]
  assert [run["seed"] for run in rows["most_popular"]["runs"]] == ["all"]
  tuning = rows["lightgcn_joint"]["tuning"]
  assert [setting["hparams"]["num_layers"] for setting in
          tuning["searched"]] == [1, 2]
  assert all(1 <= run["timing"]["epochs"] <= 2
             for run in rows["lightgcn_joint"]["runs"])
  gmn_tuning = rows["e_full_gmn"]["tuning"]
  assert [setting["hparams"]["learning_rate"] for setting in
          gmn_tuning["searched"]] == [0.003, 0.01, gmn_tuning["chosen"][
              "learning_rate"]]
  assert [setting["hparams"]["propagation_layers"] for setting in
          gmn_tuning["searched"]] == [2, 2, 1]
  assert set(gmn_tuning["chosen"]) == {"learning_rate", "propagation_layers"}
  # Users, 16 videos and 6 items.
  assert rows["lightgcn_joint"]["catalogue"] == {"videos_ranked": 16,
                                                 "nodes": 40 + 22}
  assert rows["item_knn_both_sides"]["catalogue"]["nodes"] == 22
  text = gmn.report("tiny", result)
  assert "seeded random hold-out" in text and "Strongest baseline" in text
  assert "| tiny | videos 0-2, with items |" in gmn.summary({"tiny": result})


def test_search_axes_leave_out_what_a_row_does_not_read():
  args = gmn.parse_args(["--gmn_layers", "1", "2", "--gmn_preferences", "2",
                         "8", "--gmn_temperatures", "0.1"])
  assert gmn.search_axes(args, "e_full_gmn", gmn.gmn_config(
      args, "e_full_gmn")) == {"temperature": [0.1],
                               "propagation_layers": [1, 2],
                               "num_preferences": [2, 8]}
  assert gmn.search_axes(args, "c_node_level_only", gmn.gmn_config(
      args, "c_node_level_only")) == {"temperature": [0.1],
                                      "propagation_layers": [1, 2]}
  assert gmn.search_axes(args, "a_two_tower_videos_only", gmn.gmn_config(
      args, "a_two_tower_videos_only")) == {"temperature": [0.1]}


def test_rows_from_an_earlier_run_join_only_on_the_same_split(tmp_path):
  earlier = tmp_path / "earlier.json"
  earlier.write_text(json.dumps({**_SPLIT, "rows": {
      "ease": _row(0.2, 0.0), "e_full_gmn": _row(0.1, 0.0)}}))
  result = {**_SPLIT, "rows": {"e_full_gmn": _row(0.3, 0.0)}}
  assert gmn.rows_from(earlier, result) == {"ease": _row(0.2, 0.0)}
  with pytest.raises(SystemExit, match="test_videos"):
    gmn.rows_from(earlier, {**result, "test_videos": 8})
  # The arguments go into the results file as they are.
  json.dumps(vars(gmn.parse_args(["--baselines_from", str(earlier)])))


def test_rows_of_several_earlier_runs_join_the_first_file_winning(tmp_path):
  baselines, variants = tmp_path / "baselines.json", tmp_path / "variants.json"
  baselines.write_text(json.dumps({**_SPLIT, "rows": {
      "most_popular": _row(0.05, 0.0), "ease": _row(0.2, 0.0)}}))
  variants.write_text(json.dumps({**_SPLIT, "rows": {
      "most_popular": _row(0.06, 0.0), "ease": _row(0.9, 0.0),
      "e_full_gmn": _row(0.3, 0.0)}}))
  result = {**_SPLIT, "rows": {"most_popular": _row(0.05, 0.0)}}
  gmn.join_rows_from(result, [str(baselines), str(variants)])
  assert result["rows"] == {"most_popular": _row(0.05, 0.0),
                            "ease": _row(0.2, 0.0),
                            "e_full_gmn": _row(0.3, 0.0)}
  assert result["rows_from"] == [
      {"path": str(baselines), "rows": ["ease"]},
      {"path": str(variants), "rows": ["e_full_gmn"]}]
  args = gmn.parse_args(["--baselines_from", str(baselines), str(variants)])
  assert args.baselines_from == [str(baselines), str(variants)]
