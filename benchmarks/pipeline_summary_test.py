"""Tests for gathering pipeline runs into seeds, ablations and verdicts."""

import json

import pytest

from benchmarks import pipeline_summary

_BASELINES = {
    "ease": {"recall_at_10": 0.1, "recall_at_50": 0.30, "recall_at_100": 0.4,
             "ndcg_at_10": 0.050},
    "item_knn": {"recall_at_10": 0.1, "recall_at_50": 0.25, "recall_at_100": 0.4,
                 "ndcg_at_10": 0.060},
    "most-popular": {"recall_at_10": 0.0, "recall_at_50": 0.1,
                     "recall_at_100": 0.2, "ndcg_at_10": 0.010},
}


def _run(recall_at_50, ndcg_at_10, seed=None, hparams=None, baselines=True,
         split="leave_last_out"):
  overrides = [f"seed={seed}"] if seed is not None else []
  if not baselines:
    overrides.append("baselines.families=[]")
  model = {"recall_at_10": 0.1, "recall_at_50": recall_at_50,
           "recall_at_100": 0.5, "ndcg_at_10": ndcg_at_10}
  # As pipeline_benchmark writes them: without baselines, only `metrics`.
  scorers = dict(_BASELINES, two_tower=model) if baselines else {}
  metrics = {name: {"model": value,
                    "most_popular": _BASELINES["most-popular"][name]}
             for name, value in model.items()}
  return {"dataset": "ml", "split": split, "model_family": "two_tower",
          "config_overrides": overrides, "hparam_overrides": hparams or {},
          "scorers": scorers, "metrics": metrics, "command": "python -m x"}


def test_seeds_group_and_beating_needs_every_seed_above_the_strongest():
  summary = pipeline_summary.summarize([
      _run(0.35, 0.070), _run(0.33, 0.061, seed=1, baselines=False),
      _run(0.31, 0.059, seed=2, baselines=False)])
  entry = summary["ml leave_last_out"]["configurations"]["two_tower"]
  assert entry["seeds"] == [0, 1, 2]
  assert entry["recall_at_50"]["mean"] == pytest.approx(0.33)
  assert entry["recall_at_50"]["std"] == pytest.approx(0.02)
  assert entry["recall_at_50"]["min"] == pytest.approx(0.31)
  # Recall@50: EASE^R (0.30) is strongest and every seed is above it.
  assert entry["verdict"]["recall_at_50"] == {
      "strongest_baseline": "ease", "baseline_value": 0.30,
      "beats_every_seed": True}
  # NDCG@10: item-kNN (0.060) is strongest; seed 2 (0.059) is below it.
  assert entry["verdict"]["ndcg_at_10"]["strongest_baseline"] == "item_knn"
  assert entry["verdict"]["ndcg_at_10"]["beats_every_seed"] is False


def test_an_ablation_is_its_own_configuration_and_splits_stay_apart():
  summary = pipeline_summary.summarize([
      _run(0.35, 0.07), _run(0.20, 0.03, hparams={"use_request_context": False}),
      _run(0.40, 0.08, split="temporal")])
  assert set(summary["ml leave_last_out"]["configurations"]) == {
      "two_tower", "two_tower use_request_context=False"}
  ablation = summary["ml leave_last_out"]["configurations"][
      "two_tower use_request_context=False"]
  assert ablation["recall_at_50"]["std"] is None
  assert ablation["verdict"]["recall_at_50"]["beats_every_seed"] is False
  assert set(summary["ml temporal"]["configurations"]) == {"two_tower"}


def test_baselines_that_disagree_between_runs_are_reported():
  other = _run(0.35, 0.07, seed=1)
  other["scorers"]["ease"] = dict(_BASELINES["ease"], recall_at_50=0.31)
  summary = pipeline_summary.summarize([_run(0.35, 0.07), other])
  (conflict,) = summary["ml leave_last_out"]["baseline_conflicts"]
  assert conflict.startswith("ease:")


def test_main_writes_the_summary_and_prints_the_verdicts(tmp_path, capsys):
  paths = []
  for seed, recall in enumerate((0.35, 0.33)):
    path = tmp_path / f"run{seed}.json"
    path.write_text(json.dumps(_run(recall, 0.07, seed=seed)))
    paths.append(str(path))
  output = tmp_path / "summary.json"
  assert pipeline_summary.main(["--runs", *paths, "--output", str(output)]) == 0
  written = json.loads(output.read_text())
  assert written["summary"]["ml leave_last_out"]["configurations"][
      "two_tower"]["seeds"] == [0, 1]
  assert "beats ease" in capsys.readouterr().out
