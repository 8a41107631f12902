"""Tests for the GMN benchmark's closed-form baseline rows and its verdict."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from benchmarks import gmn
from data import dual_graph
from models.item_item import fitters as item_item_fitters

_PAIRS = 30


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
  args = gmn.parse_args(["--num_negatives", "10", "--max_neighbours", "4"])
  return gmn.build(pd.concat([train, heldout]), train, heldout, validation,
                   args)


@pytest.mark.parametrize("family", ["ease", "item_knn"])
def test_only_the_both_sides_rows_reach_videos_through_items(planted, family):
  videos_only, _ = gmn.classical(planted, family)
  both_sides, chosen = gmn.classical(planted, f"{family}_both_sides")
  # Videos only: w_k shares no user with any video, so every candidate
  # ties at 0 and ties count against the target.
  assert videos_only["recall@50"] == 0.0
  assert both_sides["recall@20"] == 1.0
  assert both_sides["ndcg@20"] == pytest.approx(1.0)
  assert chosen["validation_videos"] == _PAIRS
  assert len(chosen["validation"]) == len(
      gmn.item_item.search_settings(family))


def test_validation_videos_are_left_out_of_the_tuning_fit_only(planted,
                                                              monkeypatch):
  family = item_item_fitters.FITTERS["item_knn"]
  fitted = []
  monkeypatch.setitem(item_item_fitters.FITTERS, "item_knn", dataclasses.replace(
      family, fit=lambda train, config: fitted.append(train)
      or family.fit(train, config)))
  gmn.classical(planted, "item_knn_both_sides")
  # Every setting is fitted on the tuning rows, then the chosen one on all.
  tuning_fit, final_fit = fitted[0], fitted[-1]
  rows = planted.graph.user_rows(planted.validation["user_id"])
  videos = planted.vocabulary.lookup(planted.validation["item_id"])
  assert not tuning_fit[rows, videos].any()
  assert final_fit[rows, videos].min() == 1
  assert final_fit.sum() - tuning_fit.sum() == len(planted.validation)


def _stats(mean, std):
  return {metric: {"mean": mean, "std": std} for metric in gmn.METRICS}


def test_verdict_names_the_strongest_baseline_and_who_beats_it_beyond_std():
  results = {"most_popular": _stats(0.03, 0.0), "ease": _stats(0.05, 0.0),
             "item_knn": _stats(0.04, 0.0),
             "b_pooled_both_sides": _stats(0.054, 0.005),
             "e_full_gmn": _stats(0.06, 0.005)}
  assert gmn.verdict(results) == (
      "Strongest baseline by recall@20: ease (0.0500); variants above it by "
      "more than their seed std: e_full_gmn")
