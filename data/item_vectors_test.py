"""Tests of reading `item_id -> vector` files."""

import numpy as np
import pandas as pd
import pytest

from data import item_vectors
from data import storage
from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import


def _load(tmp_path, text, item_ids=("", "a", "b", "c")):
  path = tmp_path / "images.tsv"
  path.write_text(text)
  return item_vectors.load_item_vectors(path, list(item_ids))[0]


def test_vectors_are_aligned_with_item_ids(tmp_path):
  table = _load(tmp_path, "b\t1.0,2.0\n\na\t3 4\nunknown\t5,6\n")
  np.testing.assert_array_equal(table, [[0, 0], [3, 4], [1, 2], [0, 0]])
  assert table.dtype == np.float32


@pytest.mark.parametrize("text, message", [
    ("a\t1,2\nb\t1,2,3\n",
     r"images.tsv:2: vector of item 'b' has width 3, line 1 has 2"),
    ("a\t1,2\nb 1,2\n", r"images.tsv:2: expected 'item_id<TAB>vector'"),
    ("\t1,2\n", r"images.tsv:1: empty item_id"),
    ("a\t\n", r"images.tsv:1: item 'a' has an empty vector"),
    ("a\t1,x2\n", r"images.tsv:1: vector of item 'a' holds 'x2', not a number"),
    ("a\t1,2\nb\t3,4\na\t5,6\n",
     r"images.tsv:3: item_id 'a' again \(first on line 1\)"),
    ("\n\n", r"images.tsv holds no vectors"),
])
def test_errors_name_the_file_line_and_field(tmp_path, text, message):
  with pytest.raises(ValueError, match=message):
    _load(tmp_path, text)


def _write(path, ids, vectors):
  if path.suffix == ".parquet":
    pd.DataFrame({"item_id": ids, "vector": list(vectors)}).to_parquet(path)
  elif path.suffix == ".npy":
    table = np.zeros(len(ids), dtype=[("item_id", "U8"),
                                      ("vector", np.float32, vectors.shape[1])])
    table["item_id"], table["vector"] = ids, vectors
    np.save(path, table)
  else:
    np.savez(path, item_id=np.array(ids), vector=vectors)


@pytest.mark.parametrize("suffix", [".parquet", ".npy", ".npz"])
def test_binary_formats_align_to_item_ids_and_say_what_was_found(tmp_path,
                                                                 suffix):
  path = tmp_path / f"images{suffix}"
  _write(path, ["b", "a", "z"], np.array([[1, 2], [3, 4], [5, 6]], np.float32))
  table, found = item_vectors.load_item_vectors(path, ["", "a", "b", "c"])
  np.testing.assert_array_equal(table, [[0, 0], [3, 4], [1, 2], [0, 0]])
  np.testing.assert_array_equal(found, [False, True, True, False])


def test_binary_format_rejects_a_repeated_item_id(tmp_path):
  path = tmp_path / "images.npz"
  _write(path, ["a", "b", "a"], np.ones((3, 2), np.float32))
  with pytest.raises(ValueError, match=r"images.npz: row 0: item_id 'a' "
                     "appears 2 times"):
    item_vectors.load_item_vectors(path, ["a"])


def test_binary_format_rejects_vectors_that_do_not_match_the_ids(tmp_path):
  path = tmp_path / "images.npz"
  np.savez(path, item_id=np.array(["a", "b"]), vector=np.ones(3, np.float32))
  with pytest.raises(ValueError, match="field vector: expected one vector per"):
    item_vectors.load_item_vectors(path, ["a"])


@pytest.mark.parametrize("suffix", [".tsv", ".npz"])
def test_vector_files_are_read_from_a_bucket(object_store, tmp_path, suffix):
  local = tmp_path / f"images{suffix}"
  if suffix == ".tsv":
    local.write_text("b\t1,2\na\t3,4\n")
  else:
    _write(local, ["b", "a"], np.array([[1, 2], [3, 4]], np.float32))
  uri = object_store.uri("vectors", local.name)
  storage.write_bytes(uri, local.read_bytes())

  table, found = item_vectors.load_item_vectors(uri, ["", "a", "b"])
  np.testing.assert_array_equal(table, [[0, 0], [3, 4], [1, 2]])
  np.testing.assert_array_equal(found, [False, True, True])
