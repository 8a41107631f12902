"""Columns of integers and strings as one compact, compressed bytes value.

What ExampleGen's Beam job sends through its grouping and keeps between its
stages. A runner that groups in memory (Beam's DirectRunner) holds each value
of a `GroupByKey` as a separate Python object until the group is read, and
then encodes all the groups again before handing them on, so its memory
grows with the number of values and their size. One value per user and file
chunk, packed here, keeps both small (benchmarks/README.md, "ExampleGen's
grouping, packed").

The layout, before compression: the number of integer and text columns
(`<HH`); each integer column as its length (`<I`) and little-endian int64
values; each text column as its length (`<I`), the UTF-8 byte length of
each string (`<u4`) and the strings' bytes, concatenated. Columns may differ
in length.
"""

from __future__ import annotations

import struct
import zlib
from typing import Sequence

import numpy as np

_COLUMN_COUNTS = struct.Struct("<HH")
_LENGTH = struct.Struct("<I")
# Level 1: the values are small and written once per chunk, so speed matters
# more than the last few percent of size.
_COMPRESSION_LEVEL = 1


def pack(int_columns: Sequence[Sequence[int]],
         text_columns: Sequence[Sequence[str]]) -> bytes:
  """Packs columns into bytes that `unpack` reads back.

  Args:
    int_columns: columns of integers that fit in a signed 64-bit int.
    text_columns: columns of strings.

  Returns:
    The compressed columns.

  Raises:
    OverflowError: an integer does not fit in 64 bits.
  """
  parts = [_COLUMN_COUNTS.pack(len(int_columns), len(text_columns))]
  for column in int_columns:
    parts.append(_LENGTH.pack(len(column)))
    parts.append(np.asarray(column, dtype="<i8").tobytes())
  for column in text_columns:
    encoded = [text.encode("utf-8") for text in column]
    parts.append(_LENGTH.pack(len(encoded)))
    parts.append(np.fromiter(map(len, encoded), dtype="<u4",
                             count=len(encoded)).tobytes())
    parts.append(b"".join(encoded))
  return zlib.compress(b"".join(parts), _COMPRESSION_LEVEL)


def unpack(packed: bytes) -> tuple[list[list[int]], list[list[str]]]:
  """The integer and text columns that `pack` packed, as Python lists."""
  raw = memoryview(zlib.decompress(packed))
  n_int, n_text = _COLUMN_COUNTS.unpack_from(raw)
  offset = _COLUMN_COUNTS.size
  int_columns, text_columns = [], []
  for _ in range(n_int):
    (length,) = _LENGTH.unpack_from(raw, offset)
    offset += _LENGTH.size
    int_columns.append(
        np.frombuffer(raw, dtype="<i8", count=length, offset=offset).tolist())
    offset += 8 * length
  for _ in range(n_text):
    (length,) = _LENGTH.unpack_from(raw, offset)
    offset += _LENGTH.size
    byte_lengths = np.frombuffer(raw, dtype="<u4", count=length,
                                 offset=offset).tolist()
    offset += 4 * length
    column = []
    for byte_length in byte_lengths:
      column.append(str(raw[offset:offset + byte_length], "utf-8"))
      offset += byte_length
    text_columns.append(column)
  return int_columns, text_columns
