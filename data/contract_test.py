"""Tests for reading and writing contract files, and the rows their errors name."""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest

from data import contract
from data.contract import DataValidationError
from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import

HEADER = "user_id,item_id,timestamp"


def _write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.write_text(text, encoding="utf-8")
  return path


def _interactions_csv(tmp_path: pathlib.Path, *lines: str, header: str = HEADER) -> pathlib.Path:
  return _write(tmp_path / "interactions.csv", "\n".join([header, *lines]) + "\n")


def test_read_interactions_normalises_columns_and_dtypes(tmp_path):
  path = _interactions_csv(
    tmp_path,
    "u1,i1,100,0.5,rating=3,video,cheap tv,ignored",
    "u2,i2,2020-01-05,,,,,",
    "u3,i3,2020-01-05T10:00:00+02:00,0,,,,",
    header=HEADER + ",label,event,item_type,query,extra",
  )

  frame = contract.read_interactions(path)

  assert list(frame.columns) == list(contract.INTERACTION_COLUMNS)
  assert frame["timestamp"].dtype == np.int64
  assert frame["label"].dtype == np.float64
  assert frame["timestamp"].tolist() == [100, 1578182400, 1578211200]
  assert frame["label"].tolist() == [0.5, 1.0, 0.0]
  assert frame["event"].tolist() == ["rating=3", "", ""]
  assert frame["item_type"].tolist() == ["video", "item", "item"]
  assert frame["query"].tolist() == ["cheap tv", "", ""]


def test_quoted_fields_spanning_lines_keep_line_numbers(tmp_path):
  path = _interactions_csv(tmp_path, 'u1,i1,5,"two\nlines"', "u2,i2,yesterday,x", header=HEADER + ",event")

  with pytest.raises(DataValidationError) as caught:
    contract.read_interactions(path)

  assert caught.value.row == 4


def test_utf8_byte_order_mark_is_accepted(tmp_path):
  path = tmp_path / "interactions.csv"
  path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\nu1,i1,5\n".encode())

  assert contract.read_interactions(path)["user_id"].tolist() == ["u1"]


@pytest.mark.parametrize(
  "lines, header, row, field, reason_part",
  [
    (["u1,i1,5"], "user_id,timestamp,item", None, "item_id", "missing required column 'item_id'"),
    (["u1,i1,5,abc"], HEADER + ",label", 2, "label", "cannot parse 'abc' as a number"),
    (["u1,i1,5,1", "u1,i2,6,1.5"], HEADER + ",label", 3, "label", "'1.5' is outside [0, 1]"),
    (["u1,i1,5", ",i2,6"], HEADER, 3, "user_id", "user_id is empty"),
    (["u1,i1,5", "u1, ,6"], HEADER, 3, "item_id", "item_id is empty"),
    (["u1,i1,5", "u1,i1,-3"], HEADER, 3, "timestamp", "negative unix seconds"),
    (["u1,i1,"], HEADER, 2, "timestamp", "is empty"),
    (["u1,i1,NaN"], HEADER, 2, "timestamp", "cannot parse 'NaN'"),
    (["u1,i1,1700000000000"], HEADER, 2, "timestamp", "not milliseconds"),
    (["u1,i1,2020-13-45"], HEADER, 2, "timestamp", "cannot parse '2020-13-45'"),
  ],
)
def test_invalid_values_name_row_and_field(tmp_path, lines, header, row, field, reason_part):
  with pytest.raises(DataValidationError) as caught:
    contract.read_interactions(_interactions_csv(tmp_path, *lines, header=header))

  assert (caught.value.row, caught.value.field) == (row, field)
  assert reason_part in caught.value.reason


def test_unparsable_timestamp_message_format(tmp_path):
  path = _interactions_csv(tmp_path, *[f"u1,i{n},{n}" for n in range(5)], "u1,i9,yesterday", "u1,i9,never")

  with pytest.raises(DataValidationError) as caught:
    contract.read_interactions(path)

  assert str(caught.value) == (
    f"{path} line 7, field 'timestamp': "
    "cannot parse 'yesterday' as unix seconds or ISO-8601 datetime"
  )


def test_first_offending_row_wins_across_problem_kinds(tmp_path):
  path = _interactions_csv(tmp_path, "u1,i1,5", "u1,i1,soon", "u1,i1,")

  with pytest.raises(DataValidationError, match="line 3, field 'timestamp': cannot parse 'soon'"):
    contract.read_interactions(path)


def test_empty_file(tmp_path):
  path = _write(tmp_path / "interactions.csv", "")

  with pytest.raises(DataValidationError, match=r"file is empty \(0 bytes\)") as caught:
    contract.read_interactions(path)

  assert caught.value.row is None


def test_header_only_file(tmp_path):
  with pytest.raises(DataValidationError, match="no data rows"):
    contract.read_interactions(_interactions_csv(tmp_path))


def test_non_utf8_file_names_the_line(tmp_path):
  path = tmp_path / "interactions.csv"
  path.write_bytes(f"{HEADER}\nu1,i1,5\n".encode() + "caf\u00e9,i2,6\n".encode("latin-1"))

  with pytest.raises(DataValidationError, match="not valid UTF-8: byte 0xe9 at byte offset 37") as caught:
    contract.read_interactions(path)

  assert caught.value.row == 3


def test_tab_separated_file_named_csv(tmp_path):
  path = _write(tmp_path / "interactions.csv", "user_id\titem_id\ttimestamp\nu1\ti1\t5\n")

  with pytest.raises(DataValidationError) as caught:
    contract.read_interactions(path)

  assert caught.value.field == "user_id"
  assert "missing required column 'user_id'" in str(caught.value)
  assert "looks tab-separated" in str(caught.value)


def test_truncated_last_line(tmp_path):
  path = _write(tmp_path / "interactions.csv", f"{HEADER}\nu1,i1,5\nu2,i2")

  with pytest.raises(DataValidationError, match="expected 3 fields as in the header, found 2") as caught:
    contract.read_interactions(path)

  assert caught.value.row == 3


def test_unsupported_extension(tmp_path):
  path = _write(tmp_path / "interactions.tsv", f"{HEADER}\nu1,i1,5\n")

  with pytest.raises(DataValidationError, match="unsupported file extension '.tsv'"):
    contract.read_interactions(path)


def test_missing_file_is_file_not_found(tmp_path):
  with pytest.raises(FileNotFoundError):
    contract.read_interactions(tmp_path / "interactions.csv")


def test_duplicate_header_column(tmp_path):
  with pytest.raises(DataValidationError, match="'item_id' appears twice"):
    contract.read_interactions(_interactions_csv(tmp_path, "u1,i1,5,i2", header=HEADER + ",item_id"))


def test_parquet_rows_are_zero_based_and_native_types_work(tmp_path):
  path = tmp_path / "interactions.parquet"
  pd.DataFrame({
    "user_id": [1, 2, 3],
    "item_id": ["a", "b", "c"],
    "timestamp": pd.to_datetime(["2020-01-05", "2020-01-06", "1960-01-01"]),
    "label": [1, 0, 1],
  }).to_parquet(path)

  with pytest.raises(DataValidationError) as caught:
    contract.read_interactions(path)

  assert str(caught.value).startswith(f"{path} row 2, field 'timestamp':")


def test_parquet_float_ids_with_integral_values_read_as_integers(tmp_path):
  path = tmp_path / "items.parquet"
  pd.DataFrame({"item_id": [1.0, 2.0], "title": ["x", None]}).to_parquet(path)

  items = contract.read_items(path)

  assert items["item_id"].tolist() == ["1", "2"]
  assert items["title"].tolist() == ["x", ""]


def test_read_items_fills_optional_columns_and_rejects_duplicates(tmp_path):
  items = contract.read_items(_write(tmp_path / "items.csv", "item_id,category\ni1,a|b\ni2,\n"))
  assert list(items.columns) == list(contract.ITEM_COLUMNS)
  assert items["category"].tolist() == ["a|b", ""]
  assert items["title"].tolist() == ["", ""]

  duplicated = _write(tmp_path / "items.csv", "item_id\ni1\ni2\ni1\n")
  with pytest.raises(DataValidationError, match="line 4, field 'item_id': duplicate item_id 'i1'; it first appears on line 2"):
    contract.read_items(duplicated)


def test_read_users_keeps_attributes_as_strings_and_rejects_duplicates(tmp_path):
  users = contract.read_users(_write(tmp_path / "users.csv", "user_id,age,zip\nu1,24,01234\n"))
  assert users.to_dict("records") == [{"user_id": "u1", "age": "24", "zip": "01234"}]

  with pytest.raises(DataValidationError, match="duplicate user_id 'u1'"):
    contract.read_users(_write(tmp_path / "users.csv", "user_id\nu1\nu1\n"))


def _dataset() -> contract.Dataset:
  interactions = contract.normalize_interactions(pd.DataFrame({
    "user_id": ["u1", "u2"], "item_id": ["i1", "i9"], "timestamp": [5, 6],
    "label": [1.0, 0.0], "event": ["click, twice", ""], "query": ["", "red shoes"],
  }))
  items = contract.normalize_items(pd.DataFrame({"item_id": ["i1", "i2"], "related_items": ["i2", ""]}))
  users = contract.normalize_users(pd.DataFrame({"user_id": ["u1"], "age": ["31"]}))
  return contract.Dataset(interactions, items, users)


@pytest.mark.parametrize("fmt", contract.WRITE_FORMATS)
def test_write_then_load_round_trips(tmp_path, fmt):
  dataset = _dataset()

  directory = contract.write_dataset(dataset, tmp_path / "out", fmt=fmt)
  loaded = contract.load_dataset(directory)

  pd.testing.assert_frame_equal(loaded.interactions, dataset.interactions)
  pd.testing.assert_frame_equal(loaded.items, dataset.items)
  pd.testing.assert_frame_equal(loaded.users, dataset.users)


def test_write_removes_stale_contract_files(tmp_path):
  contract.write_dataset(_dataset(), tmp_path, fmt="parquet")
  without_side_tables = contract.Dataset(_dataset().interactions)

  contract.write_dataset(without_side_tables, tmp_path, fmt="csv")

  loaded = contract.load_dataset(tmp_path)
  assert loaded.items is None and loaded.users is None


def test_load_dataset_needs_exactly_one_interactions_file(tmp_path):
  with pytest.raises(DataValidationError, match="no interactions.csv or interactions.parquet found"):
    contract.load_dataset(tmp_path)

  _write(tmp_path / "interactions.tsv", "")
  with pytest.raises(DataValidationError, match="found interactions.tsv, an unsupported format"):
    contract.load_dataset(tmp_path)

  contract.write_dataset(_dataset(), tmp_path, fmt="csv")
  _dataset().interactions.to_parquet(tmp_path / "interactions.parquet")
  with pytest.raises(DataValidationError, match="found both interactions.csv and interactions.parquet"):
    contract.load_dataset(tmp_path)


def test_load_dataset_missing_directory(tmp_path):
  with pytest.raises(FileNotFoundError):
    contract.load_dataset(tmp_path / "absent")


@pytest.mark.parametrize("fmt", contract.WRITE_FORMATS)
def test_a_bucket_directory_round_trips_and_names_its_files(object_store, fmt):
  directory = object_store.uri("datasets", "sample")

  assert contract.write_dataset(_dataset(), directory, fmt=fmt) == directory
  loaded = contract.load_dataset(directory)

  pd.testing.assert_frame_equal(loaded.interactions, _dataset().interactions)
  pd.testing.assert_frame_equal(loaded.users, _dataset().users)
  assert object_store.keys("datasets/") == [
      f"datasets/sample/{stem}.{fmt}" for stem in ("interactions", "items", "users")]
  object_store.client().put_object(Bucket=object_store.bucket,
                                   Key="datasets/bad/interactions.csv",
                                   Body=b"user_id,item_id,timestamp\nu1,i1,soon\n")
  with pytest.raises(DataValidationError,
                     match=f"{object_store.uri('datasets', 'bad', 'interactions.csv')} line 2, field 'timestamp'"):
    contract.load_dataset(object_store.uri("datasets", "bad"))
  with pytest.raises(FileNotFoundError, match="dataset directory not found"):
    contract.load_dataset(object_store.uri("datasets", "absent"))


@pytest.mark.parametrize("fmt", contract.WRITE_FORMATS)
def test_interaction_chunks_are_the_whole_file_in_file_order(tmp_path, fmt):
  interactions = contract.normalize_interactions(pd.DataFrame({
    "user_id": [f"u{k % 3}" for k in range(7)],
    "item_id": ["i\nwith a line break" if k == 2 else f"i{k}" for k in range(7)],
    "timestamp": list(range(100, 107))}))
  directory = contract.write_dataset(contract.Dataset(interactions), tmp_path, fmt)
  path, _, _ = contract.find_dataset_files(directory)

  chunks = list(contract.read_interaction_chunks(path, chunk_rows=3))

  assert [len(chunk) for chunk in chunks] == [3, 3, 1]
  pd.testing.assert_frame_equal(pd.concat(chunks), contract.read_interactions(path))


@pytest.mark.parametrize("fmt, row", [("csv", 7), ("parquet", 4)])
def test_a_bad_row_in_a_later_chunk_is_named_by_its_place_in_the_file(tmp_path, fmt, row):
  frame = pd.DataFrame({"user_id": ["u1"] * 6, "item_id": ["i1"] * 6,
                        "timestamp": ["1", "2", "3", "4", "yesterday", "6"]})
  path = tmp_path / f"interactions.{fmt}"
  if fmt == "csv":
    # A quoted line break before the bad row: line numbers, not row counts.
    frame.loc[1, "item_id"] = "i\n1"
    frame.to_csv(path, index=False)
  else:
    frame.to_parquet(path, index=False)

  with pytest.raises(DataValidationError) as error:
    list(contract.read_interaction_chunks(path, chunk_rows=2))

  assert (error.value.row, error.value.field) == (row, "timestamp")
  assert "'yesterday'" in error.value.reason
