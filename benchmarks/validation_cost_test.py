"""Tests for the validation cost benchmark (a small catalogue)."""

import json

from benchmarks import validation_cost


def test_both_validators_score_the_same_rows_alike(tmp_path):
  output = tmp_path / "validation.json"
  assert validation_cost.main(["--items", "500", "3000", "--rows", "64",
                               "--baseline-ref", "HEAD",
                               "--output", str(output)]) == 0
  points = json.loads(output.read_text())["points"]
  assert [point["items"] for point in points] == [500, 3000]
  assert all(point["same_scores"] and point["ms_per_row"] > 0 and
             point["baseline_ms_per_row"] > 0 for point in points)
