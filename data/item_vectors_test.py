"""Tests of reading `item_id -> vector` text files."""

import numpy as np
import pytest

from data import item_vectors


def _load(tmp_path, text, item_ids=("", "a", "b", "c")):
  path = tmp_path / "images.tsv"
  path.write_text(text)
  return item_vectors.load_item_vectors(path, list(item_ids))


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
