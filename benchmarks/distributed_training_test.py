"""Tests for the one-process / two-worker benchmark's summary."""

import pytest

from benchmarks import distributed_training


def _run(recall, examples_per_s):
  return {"metrics": {"recall_at_10": recall, "recall_at_50": 1.0,
                      "ndcg_at_10": recall / 2},
          "examples_per_s": examples_per_s}


def test_summary_is_the_mean_and_std_over_seeds_and_the_throughput_ratio():
  runs = [{distributed_training.ONE_PROCESS: _run(0.3, 400.0),
           distributed_training.TWO_WORKERS: _run(0.2, 100.0)},
          {distributed_training.ONE_PROCESS: _run(0.5, 200.0),
           distributed_training.TWO_WORKERS: _run(0.4, 200.0)}]
  result = distributed_training.summary(runs)
  one = result[distributed_training.ONE_PROCESS]
  assert one["recall_at_10"] == {"mean": 0.4, "std": 0.1}
  assert one["examples_per_s"] == {"mean": 300.0, "std": 100.0}
  assert result["examples_per_s_ratio"] == pytest.approx(150.0 / 300.0)
  assert "two workers / one process examples/s: 0.5" in (
      distributed_training.table(result))
