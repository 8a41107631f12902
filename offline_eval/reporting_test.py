"""Tests of seed aggregation and table output."""

import json

import numpy as np
import pytest

from offline_eval import reporting


def test_aggregate_seeds_mean_and_sample_std():
  stats = reporting.aggregate_seeds([{"a": 1.0}, {"a": 2.0}, {"a": 3.0}])
  assert stats["a"]["mean"] == 2.0
  assert stats["a"]["std"] == pytest.approx(1.0)
  assert reporting.format_mean_std(stats["a"], 2) == "2.00 ± 1.00"


def test_aggregate_seeds_rejects_mismatched_runs():
  with pytest.raises(ValueError, match="different metrics"):
    reporting.aggregate_seeds([{"a": 1.0}, {"b": 2.0}])


def test_markdown_table_and_json(tmp_path):
  table = reporting.markdown_table(["x", "y"], [[1, 2]])
  assert table.splitlines() == ["| x | y |", "|---|---|", "| 1 | 2 |"]
  with pytest.raises(ValueError):
    reporting.markdown_table(["x"], [[1, 2]])
  path = reporting.write_json(tmp_path / "out" / "r.json", {"v": np.float32(0.5)})
  assert json.loads(path.read_text()) == {"v": 0.5}
