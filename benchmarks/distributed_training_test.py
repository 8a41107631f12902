"""Tests for the one-process / two-worker benchmark's summary and merge."""

import json
import pathlib

import pytest

from benchmarks import distributed_training

ONE = distributed_training.ONE_PROCESS
TWO = distributed_training.TWO_WORKERS


def _run(recall, examples_per_s):
  return {"metrics": {"recall_at_10": recall, "recall_at_50": 1.0,
                      "ndcg_at_10": recall / 2},
          "examples_per_s": examples_per_s}


def test_summary_is_the_mean_and_std_over_seeds_and_the_throughput_ratio():
  runs = [{ONE: _run(0.3, 400.0), TWO: _run(0.2, 100.0)},
          {ONE: _run(0.5, 200.0), TWO: _run(0.4, 200.0)}]
  result = distributed_training.summary(runs)
  one = result[ONE]
  assert one["recall_at_10"] == {"mean": 0.4, "std": 0.1}
  assert one["examples_per_s"] == {"mean": 300.0, "std": 100.0}
  assert result["examples_per_s_ratio"] == pytest.approx(150.0 / 300.0)
  assert distributed_training.ONE_WORKER_JOB not in result
  assert "2 seeds; two workers / one process examples/s: 0.5" in (
      distributed_training.table(result))


def test_the_paired_difference_is_taken_seed_by_seed():
  # Unpaired, the setups' spreads (0.1 each) hide a constant gap of -0.05.
  runs = [{ONE: _run(0.3, 1.0), TWO: _run(0.25, 1.0)},
          {ONE: _run(0.5, 1.0), TWO: _run(0.45, 1.0)}]
  difference = distributed_training.summary(runs)[
      "two_workers_minus_one_process"]
  assert difference["recall_at_10"] == {"mean": -0.05, "std": 0.0}


def test_a_one_worker_job_is_summarised_beside_the_others():
  job = distributed_training.ONE_WORKER_JOB
  runs = [{ONE: _run(0.3, 4.0), TWO: _run(0.2, 1.0), job: _run(0.35, 3.0)}]
  result = distributed_training.summary(runs)
  assert result[job]["recall_at_10"] == {"mean": 0.35, "std": 0.0}
  assert job in distributed_training.table(result)


def _output(path, seeds, **args):
  settings = {name: 1 for name in distributed_training._MERGED_ARGS}
  path.write_text(json.dumps({
      "args": {**settings, **args},
      "runs": {str(seed): {ONE: _run(0.3, 1.0), TWO: _run(0.2, 1.0)}
               for seed in seeds}}))
  return str(path)


def test_merge_pools_the_seeds_of_outputs_with_the_same_settings(tmp_path):
  first = _output(tmp_path / "a.json", [0, 1], seed=[0, 1])
  second = _output(tmp_path / "b.json", [2], seed=[2])
  runs, settings = distributed_training.merge([first, second])
  assert sorted(runs) == ["0", "1", "2"]
  assert "seed" not in settings
  merged = tmp_path / "merged.json"
  result = distributed_training.main(["--merge", first, second,
                                      "--output", str(merged)])
  assert result["seeds"] == 3
  assert json.loads(merged.read_text())["merged"] == [first, second]


def test_merge_refuses_other_settings_and_a_seed_listed_twice(tmp_path):
  first = _output(tmp_path / "a.json", [0])
  with pytest.raises(SystemExit, match="settings"):
    distributed_training.merge(
        [first, _output(tmp_path / "b.json", [1], epochs=12)])
  with pytest.raises(SystemExit, match="seed 0"):
    distributed_training.merge([first, _output(tmp_path / "c.json", [0])])


def test_a_setting_an_older_output_lacks_is_the_flag_s_default(tmp_path):
  older = json.loads(pathlib.Path(_output(tmp_path / "a.json", [0])).read_text())
  del older["args"]["num_uniform_negatives"]
  (tmp_path / "a.json").write_text(json.dumps(older))
  newer = _output(tmp_path / "b.json", [1], num_uniform_negatives=16)
  _, settings = distributed_training.merge([str(tmp_path / "a.json"), newer])
  assert settings["num_uniform_negatives"] == 16
