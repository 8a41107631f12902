"""Bad input that tests/bad_input_test.py does not cover, and what it does.

Each case either stops the run with a clear error before anything is pushed,
or is handled in a documented way:

- a `;`-separated file: DataValidationError naming the file, the missing
  `user_id` column and the semicolon; nothing runs.
- a `nan` timestamp: DataValidationError naming file, line and `timestamp`;
  nothing runs. (A float NaN in Parquet reads as a missing value: "is empty".)
- exact duplicate rows (same user, item and timestamp): counted once, so a
  duplicated newest positive is still a retrievable eval target.
- items seen only in eval: the run goes on; their examples are sliced as
  `item_popularity_bucket == "unseen"` and, as the item is out of the
  train-only vocabulary, rank last, i.e. count as misses (the model side is
  covered by models/retrieval/export_test.py::
  test_target_outside_catalogue_gets_worst_rank).
- no user with a second positive, so an empty eval split: `build_rows` raises
  ValueError; InteractionExampleGen fails with it, the CLI exits non-zero
  with its message and nothing is pushed.
"""

import os

import pandas as pd
import pytest

from data import contract
from data import examples
from data import features
from tests.bad_input_test import GOOD_ROWS, HEADER
from tfx_pipeline import cli


def _write_interactions(directory, *lines: str):
  directory.mkdir()
  (directory / "interactions.csv").write_text("\n".join(lines) + "\n",
                                              encoding="utf-8")
  return directory


def _run_cli(dataset_dir, workspace, capsys) -> tuple[int, str]:
  """Runs the pipeline CLI; returns its exit status and last stderr line."""
  status = cli.main(["run", "--dataset", "contract", "--dataset-dir",
                     str(dataset_dir), "--workspace", str(workspace),
                     "--no-demo"])
  return status, capsys.readouterr().err.strip().splitlines()[-1]


def _assert_nothing_pushed(workspace) -> None:
  assert not os.path.exists(workspace / "serving")


def _dataset(rows) -> contract.Dataset:
  """A validated dataset of (user, item, timestamp) positives."""
  return contract.Dataset(interactions=contract.normalize_interactions(
      pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])))


@pytest.mark.parametrize("lines, fragments", [
    ([r.replace(",", ";") for r in [HEADER, *GOOD_ROWS]],
     ["interactions.csv", "'user_id'", "semicolon"]),
    ([HEADER, GOOD_ROWS[0], "u1,i2,nan,1"],
     ["interactions.csv", "line 3", "'timestamp'", "'nan'"]),
], ids=["semicolon_delimiter", "nan_timestamp"])
def test_invalid_file_fails_before_the_pipeline_starts(lines, fragments,
                                                       tmp_path, capsys):
  dataset_dir = _write_interactions(tmp_path / "data", *lines)
  workspace = tmp_path / "workspace"

  status, message = _run_cli(dataset_dir, workspace, capsys)

  assert status != 0
  assert message.startswith("error: DataValidationError"), message
  for fragment in fragments:
    assert fragment in message, message
  _assert_nothing_pushed(workspace)
  assert not os.path.exists(workspace / "pipelines")


def test_parquet_nan_timestamp_is_a_missing_timestamp(tmp_path):
  frame = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["i1", "i2"],
                        "timestamp": [1000.0, float("nan")]})
  path = tmp_path / "interactions.parquet"
  frame.to_parquet(path, index=False)

  with pytest.raises(contract.DataValidationError) as raised:
    contract.read_interactions(path)

  assert (raised.value.row, raised.value.field) == (1, "timestamp")
  assert "is empty" in raised.value.reason


def test_exact_duplicate_rows_count_once():
  rows = examples.build_rows(_dataset([
      ("u1", "i1", 1000), ("u1", "i1", 1000), ("u1", "i2", 1001),
      ("u2", "i1", 1000), ("u2", "i3", 1001), ("u2", "i3", 1001),
  ]))

  assert [(r[features.USER_ID], r[features.ITEM_ID],
           r[features.HISTORY_ITEM_IDS]) for r in rows.train] == [
               ("u1", "i1", []), ("u2", "i1", [])]
  assert [(r[features.USER_ID], r[features.ITEM_ID],
           r[features.HISTORY_ITEM_IDS]) for r in rows.eval] == [
               ("u1", "i2", ["i1"]), ("u2", "i3", ["i1"])]


def test_items_seen_only_in_eval_are_sliced_as_unseen():
  rows = examples.build_rows(_dataset([
      ("u1", "i1", 1000), ("u1", "new_1", 1001),
      ("u2", "i1", 1000), ("u2", "i2", 1001), ("u2", "new_2", 1002),
  ]))

  assert {r[features.ITEM_ID]: r[features.ITEM_POPULARITY_BUCKET]
          for r in rows.eval} == {"new_1": "unseen", "new_2": "unseen"}
  assert all(r[features.ITEM_POPULARITY_BUCKET] != "unseen"
             for r in rows.train)


def test_empty_eval_split_is_a_clear_error():
  one_positive_each = _dataset([("u1", "i1", 1000), ("u2", "i2", 1001),
                                ("u3", "i1", 1002)])
  with pytest.raises(ValueError, match="eval split would be empty"):
    examples.build_rows(one_positive_each)


def test_empty_eval_split_fails_the_cli_and_pushes_nothing(tmp_path, capsys):
  dataset_dir = _write_interactions(
      tmp_path / "data", HEADER, "u1,i1,1000,1", "u2,i2,1001,1",
      "u3,i1,1002,1")
  workspace = tmp_path / "workspace"

  status, message = _run_cli(dataset_dir, workspace, capsys)

  assert status != 0
  assert message.startswith("error: "), message
  assert "eval split would be empty" in message, message
  _assert_nothing_pushed(workspace)
