"""`vrec import-data NAME URI` writes the contract directory to a bucket."""

from data import contract
from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import
from tests import prerequisites
from tfx_pipeline import cli


def test_import_data_writes_the_contract_directory_to_a_bucket(
    object_store, capsys):
  prerequisites.shared_data_root("movielens-100k")
  uri = object_store.uri("datasets", "ml100k")

  assert cli.main(["import-data", "movielens-100k", uri]) == 0

  assert capsys.readouterr().out.strip() == (
      f"Wrote contract dataset movielens-100k to {uri}")
  assert object_store.keys() == [f"datasets/ml100k/{stem}.csv"
                                 for stem in ("interactions", "items", "users")]
  assert len(contract.load_dataset(uri).users) == 943


def test_import_data_into_a_missing_bucket_fails_in_one_line(object_store,
                                                             capsys):
  status = cli.main(["import-data", "movielens-100k",
                     "s3://vrec-missing-bucket/datasets/ml100k"])

  error = capsys.readouterr().err.strip()
  assert status == 1
  assert error.startswith("error: StorageError: s3://vrec-missing-bucket/"
                          "datasets/ml100k: bucket 'vrec-missing-bucket' "
                          "does not exist")
  assert "\n" not in error
  assert object_store.keys() == []
