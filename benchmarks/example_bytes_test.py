"""Tests for the ExampleGen bytes benchmark, on a small MovieLens sample."""

import json

import pytest

from benchmarks import example_bytes
from data import contract
from data import importers
from tests import prerequisites


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
  dataset = importers.IMPORTERS["movielens-100k"](
      prerequisites.shared_data_root("movielens-100k"))
  users = sorted(dataset.interactions["user_id"].unique(), key=int)[:30]
  interactions = dataset.interactions
  return contract.write_dataset(
      contract.Dataset(interactions[interactions["user_id"].isin(users)]
                       .reset_index(drop=True), dataset.items),
      tmp_path_factory.mktemp("sample"))


def test_each_layout_and_group_is_measured_against_the_rows(sample_dir,
                                                             tmp_path):
  output = tmp_path / "bytes.json"
  results = example_bytes.main(["--datasets", "contract", "--dataset-dir",
                                str(sample_dir), "--ctr-negatives", "1",
                                "--output", str(output)])
  result = results[f"contract-{sample_dir.name}"]
  assert json.loads(output.read_text())["results"] == results
  totals = result["totals"]
  once_per_item = result[example_bytes.ITEM_SIDE_INFO]
  assert once_per_item["train"] < result["per_user"]["train"]
  assert once_per_item["items"] > 0
  assert totals[example_bytes.ITEM_SIDE_INFO] == sum(once_per_item.values())
  assert result["per_row_over"]["per_user"] == round(
      totals["per_row"] / totals["per_user"], 2)
  assert set(result["train_without"]) == set(example_bytes.FEATURE_GROUPS)
  assert all(size < result["per_user"]["train"]
             for size in result["train_without"].values())
