"""Tests for the co-occurrence size benchmark (a small synthetic log)."""

import json

from benchmarks import gram_size
from data import synthetic


def test_a_small_log_fits_both_baselines_and_the_record_adds_up(tmp_path):
  log_dir = synthetic.write_log(tmp_path / "log", 3_000, n_items=200)
  output = tmp_path / "gram.json"
  assert gram_size.main(["--logs", str(log_dir), "--fit",
                         "--output", str(output)]) == 0
  record = json.loads(output.read_text())["logs"][0]
  interactions = gram_size.interactions_of(log_dir)
  assert record["gram_nonzeros"] == (interactions.T @ interactions).nnz
  assert record["events"] == interactions.nnz <= 3_000
  assert record["ease"]["fitted"] and record["item_knn"]["fitted"]
  assert 0 < record["ease_approx_path_gb"] < record["default_budget_gb"]


def test_ease_threads_fit_the_path_once_per_thread_count(tmp_path, capsys):
  log_dir = synthetic.write_log(tmp_path / "log", 3_000, n_items=200)
  output = tmp_path / "gram.json"
  assert gram_size.main(["--logs", str(log_dir), "--ease-threads", "1", "2",
                         "--output", str(output)]) == 0
  record = json.loads(output.read_text())["logs"][0]
  assert "ease" not in record
  assert list(record["ease_by_threads"]) == ["1", "2"]
  assert all(outcome["fitted"]
             for outcome in record["ease_by_threads"].values())
  assert "s / first" in capsys.readouterr().out
