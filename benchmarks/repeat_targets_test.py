"""Tests for the repeat-target count, on a tiny log."""

import json

import pandas as pd

from benchmarks import repeat_targets
from data import contract


def _log(rows):
  return contract.normalize_interactions(pd.DataFrame(
      rows, columns=["user_id", "item_id", "timestamp", "label"]), "test log")


def test_counts_targets_already_in_the_train_history():
  log = _log([("u1", "a", 1, 1.0), ("u1", "b", 2, 1.0), ("u1", "a", 3, 1.0),
              ("u2", "c", 1, 1.0), ("u2", "d", 2, 1.0),
              # A negative is not a positive: u2's target is d, not c.
              ("u2", "c", 3, 0.0),
              # One positive: no eval target.
              ("u3", "e", 1, 1.0)])
  assert repeat_targets.repeat_share(log) == {"users": 2, "repeats": 1,
                                              "share": 0.5}


def test_a_logging_duplicate_is_not_a_repeat():
  # The same item in the same second is one event (`user_sequence`).
  log = _log([("u1", "a", 1, 1.0), ("u1", "b", 2, 1.0), ("u1", "b", 2, 1.0)])
  assert repeat_targets.repeat_share(log)["repeats"] == 0


def test_main_writes_the_share_of_a_contract_directory(tmp_path):
  directory = contract.write_dataset(
      contract.Dataset(interactions=_log([("u1", "a", 1, 1.0),
                                          ("u1", "a", 2, 1.0)])),
      tmp_path / "log")
  output = tmp_path / "out.json"
  repeat_targets.main(["--datasets", "contract", "--dataset-dir",
                       str(directory), "--output", str(output)])
  (result,) = json.loads(output.read_text())["results"].values()
  assert result["share"] == 1.0
