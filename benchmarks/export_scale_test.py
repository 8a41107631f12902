"""Tests for the export scale benchmark, on tiny catalogues."""

import json

import numpy as np

from benchmarks import export_scale


def test_synthetic_catalogue_is_ids_at_their_own_indices_all_servable():
  catalogue = export_scale.synthetic_catalogue(4)
  assert catalogue.item_ids.tolist() == ["", "1", "2", "3"]
  np.testing.assert_array_equal(catalogue.train_counts, [0, 1001, 501, 334])


def test_every_family_is_measured_chunked_and_whole_in_a_bare_child(tmp_path):
  output = tmp_path / "scale.json"
  rows = export_scale.main(
      ["--items", "40", "--neighbours", "3", "--eval-batch", "4",
       "--eval-batches", "1", "--warm-up", "1", "--requests", "2",
       "--output", str(output)])
  assert [(row["family"], row["chunked"]) for row in rows] == [
      ("two_tower", True), ("two_tower", False),
      ("item_item", True), ("item_item", False)]
  for row in rows:
    assert "failure" not in row, row["failure"]
    assert row["saved_model_mib"] > 0 and row["load_s"] > 0
    assert row["evaluate_examples_per_s"] > 0
    assert row["retrieve_p99_ms"] >= row["retrieve_p50_ms"] > 0
  assert rows[0]["evaluate_speedup"] > 0
  written = json.loads(output.read_text())
  assert written["rows"] == rows
  assert len(written["machine"]["load_average"]) == 3
