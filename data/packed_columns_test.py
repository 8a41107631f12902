"""Tests for data.packed_columns."""

import struct
import zlib

import pytest

from data import packed_columns


def test_layout_before_compression_is_counts_then_columns():
  packed = packed_columns.pack([[1, -2]], [["ab", "é"]])
  raw = zlib.decompress(packed)
  assert raw == (struct.pack("<HH", 1, 1)
                 + struct.pack("<I", 2) + struct.pack("<qq", 1, -2)
                 + struct.pack("<I", 2) + struct.pack("<II", 2, 2)
                 + b"ab" + "é".encode("utf-8"))


def test_round_trip_keeps_values_types_and_uneven_lengths():
  int_columns = [[1_700_000_000, -5, 2**63 - 1], [], [7]]
  text_columns = [["item-ü", "", "a\x00b"], ["only one"], []]
  ints, texts = packed_columns.unpack(
      packed_columns.pack(int_columns, text_columns))
  assert ints == int_columns and texts == text_columns
  assert all(type(value) is int for column in ints for value in column)


def test_no_columns_round_trip():
  assert packed_columns.unpack(packed_columns.pack([], [])) == ([], [])


def test_an_integer_beyond_64_bits_is_refused():
  with pytest.raises(OverflowError):
    packed_columns.pack([[2**63]], [])


def test_repetitive_columns_compress_below_their_raw_size():
  timestamps = list(range(1_600_000_000, 1_600_000_000 + 40 * 3600, 3600))
  items = [f"item_{index % 7}" for index in range(40)]
  packed = packed_columns.pack([timestamps], [items, [""] * 40])
  raw_size = 2 + 4 + 8 * 40 + 2 * (4 + 4 * 40) + sum(map(len, items))
  assert len(packed) < raw_size / 2
