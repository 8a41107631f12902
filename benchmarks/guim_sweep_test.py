"""Tests of the K-sweep merge and verdict on known per-seed values."""

import pytest

from benchmarks import guim_sweep

TASKS = [{"name": "a", "kind": "next_item"}, {"name": "b", "kind": "x"},
         {"name": "c", "kind": "x"}, {"name": "d", "kind": "x"}]
DIVERSE = guim_sweep.MOST_DIVERSE


def _run(seed, rows):
  """One seed's benchmark file; `rows`: row -> {metric: value}."""
  return {"command": f"run {seed}", "machine": {"load_average": [seed]},
          "wall_seconds": 10.0 * seed,
          "results": [{
              "dataset": "toy", "tasks": TASKS, "seeds": [seed],
              "sizes": {"catalogue_items": 5},
              "metrics": {row: {name: {"values": [value]}
                                for name, value in values.items()}
                          for row, values in rows.items()},
              "learning_curves": {"guim_k1": [
                  {"seed": seed, "seconds_to_99pct_of_best": 10.0 + seed}]},
              "train_and_embed_seconds": {"guim_k1": [1.0 + seed]}}]}


def _values(a, b, c, d, diverse):
  return {"a": a, "b": b, "c": c, "d": d, DIVERSE: diverse}


def test_merge_aggregates_each_rows_seeds_in_order():
  merged = guim_sweep.merge([
      _run(0, {"guim_k1": _values(1, 1, 1, 1, 1), "ease": {"a": 0.5}}),
      _run(1, {"guim_k1": _values(3, 1, 1, 1, 1)})])
  assert merged["seeds"] == [0, 1]
  assert merged["metrics"]["guim_k1"]["a"]["values"] == [1.0, 3.0]
  assert merged["metrics"]["guim_k1"]["a"]["mean"] == 2.0
  # A deterministic row run with one seed only keeps its one value.
  assert merged["metrics"]["ease"]["a"]["values"] == [0.5]
  assert merged["seconds_to_99pct_of_best"] == {"guim_k1": 10.5}
  assert merged["train_and_embed_seconds"] == {"guim_k1": [1.0, 2.0]}
  assert merged["commands"] == ["run 0", "run 1"]


def test_a_seeds_rows_may_come_from_two_files():
  later_rows = _run(0, {"guim_k2": _values(2, 2, 2, 2, 2)})
  del later_rows["results"][0]["learning_curves"]
  later_rows["results"][0]["train_and_embed_seconds"] = {"guim_k2": [5.0]}
  merged = guim_sweep.merge([
      _run(0, {"guim_k1": _values(1, 1, 1, 1, 1)}), later_rows,
      _run(1, {"guim_k1": _values(3, 1, 1, 1, 1),
               "guim_k2": _values(4, 1, 1, 1, 1)})])
  assert merged["seeds"] == [0, 1]
  assert merged["metrics"]["guim_k2"]["a"]["values"] == [2.0, 4.0]
  assert merged["metrics"]["guim_k1"]["a"]["values"] == [1.0, 3.0]


def test_k_verdict_needs_three_tasks_and_the_diverse_quartile_every_seed():
  per_seed = {
      "guim_k1": [_values(1, 1, 1, 1, 1), _values(1, 1, 1, 1, 1)],
      # Three tasks won in both seeds, the diverse quartile in one only.
      "guim_k2": [_values(2, 2, 2, 0, 2), _values(2, 2, 2, 1, 1)],
      # Four tasks in seed 0, two (a tie is no win) in seed 1.
      "guim_k4": [_values(2, 2, 2, 2, 2), _values(2, 2, 1, 1, 2)],
      "guim_k4_concat": [_values(0, 0, 0, 0, 0)] * 2,
      "two_tower": [_values(9, 9, 9, 9, 9)] * 2,
  }
  verdict = guim_sweep.k_verdict(per_seed, ["a", "b", "c", "d"])
  assert set(verdict) == {"guim_k2", "guim_k4"}
  assert verdict["guim_k2"] == {
      "tasks_won_per_seed": [["a", "b", "c"], ["a", "b", "c"]],
      "beats_k1_on_3_tasks_every_seed": True,
      "most_diverse_won_per_seed": [True, False],
      "beats_k1_on_most_diverse_every_seed": False}
  assert verdict["guim_k4"]["tasks_won_per_seed"][1] == ["a", "b"]
  assert not verdict["guim_k4"]["beats_k1_on_3_tasks_every_seed"]
  assert verdict["guim_k4"]["beats_k1_on_most_diverse_every_seed"]


def test_strongest_baseline_skips_guim_and_random():
  metrics = {"guim_k4": {"a": {"mean": 0.9}}, "random": {"a": {"mean": 0.8}},
             "two_tower": {"a": {"mean": 0.3}, "b": {"mean": 0.1}},
             "item_knn": {"a": {"mean": 0.4}}}
  assert guim_sweep.strongest_baselines(metrics, ["a", "b"]) == {
      "a": "item_knn", "b": "two_tower"}


def test_only_single_metric_tasks_are_judged():
  assert guim_sweep.task_metrics(
      TASKS + [{"name": "r", "kind": "sampled_ranking"}]) == ["a", "b", "c",
                                                               "d"]
  with pytest.raises(KeyError):
    guim_sweep.k_verdict({"guim_k2": []}, ["a"])
