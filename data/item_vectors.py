"""External `item_id -> vector` files, e.g. precomputed image embeddings.

One reader for every model that takes such a file (SEMINAR's image vectors,
COURIER's external content). The format follows the file extension:

- `.parquet`: columns `item_id` (string) and `vector` (list of floats);
- `.npy`: a structured array with fields `item_id` and `vector` (loaded
  without pickle);
- `.npz`: arrays `item_id` `[n]` and `vector` `[n, dim]`;
- anything else is text: one item per line, the raw item id, a tab, then
  the vector's values separated by commas or spaces; blank lines are
  skipped. Every error names the file, the line and the field (`item_id` or
  `vector`) at fault.

The path is a local path or a URI (`s3://bucket/vectors.npz`, `data.storage`).
"""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np
import pandas as pd

from data import storage

ID_COLUMN = "item_id"
VECTOR_COLUMN = "vector"
_BINARY_FORMATS = (".parquet", ".npy", ".npz")


def _parse_line(path: str | os.PathLike, line_number: int,
                line: str) -> tuple[str, np.ndarray]:
  """One line's item id and vector."""
  where = f"{path}:{line_number}"
  item_id, tab, values = line.partition("\t")
  if not tab:
    raise ValueError(f"{where}: expected 'item_id<TAB>vector', found no tab")
  if not item_id.strip():
    raise ValueError(f"{where}: empty item_id")
  tokens = values.replace(",", " ").split()
  if not tokens:
    raise ValueError(f"{where}: item {item_id!r} has an empty vector")
  try:
    return item_id, np.array(tokens, np.float32)
  except ValueError:
    bad = next(token for token in tokens if not _is_number(token))
    raise ValueError(f"{where}: vector of item {item_id!r} holds {bad!r}, "
                     "not a number") from None


def _is_number(token: str) -> bool:
  try:
    float(token)
  except ValueError:
    return False
  return True


def _read_text(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """The vectors of a text file by item id, checked line by line."""
  vectors: dict[str, np.ndarray] = {}
  line_of_item: dict[str, int] = {}
  for line_number, line in enumerate(
      storage.read_text(path).splitlines(), 1):
    if not line.strip():
      continue
    item_id, vector = _parse_line(path, line_number, line)
    if item_id in vectors:
      raise ValueError(f"{path}:{line_number}: item_id {item_id!r} again "
                       f"(first on line {line_of_item[item_id]})")
    if not vectors:
      width, width_line = len(vector), line_number
    elif len(vector) != width:
      raise ValueError(
          f"{path}:{line_number}: vector of item {item_id!r} has width "
          f"{len(vector)}, line {width_line} has {width}")
    vectors[item_id] = vector
    line_of_item[item_id] = line_number
  return vectors


def _read_binary(path: str | os.PathLike, extension: str
                 ) -> dict[str, np.ndarray]:
  """The vectors of a `.parquet`, `.npy` or `.npz` file by item id."""
  raw = io.BytesIO(storage.read_bytes(path))
  if extension == ".parquet":
    frame = pd.read_parquet(raw, columns=[ID_COLUMN, VECTOR_COLUMN])
    ids = frame[ID_COLUMN].astype(str).to_numpy()
    vectors = np.stack(frame[VECTOR_COLUMN].to_numpy()) if len(frame) else (
        np.zeros((0, 0), np.float32))
  else:
    loaded = np.load(raw, allow_pickle=False)
    ids = np.asarray(loaded[ID_COLUMN]).astype(str)
    vectors = np.asarray(loaded[VECTOR_COLUMN])
  if vectors.ndim != 2 or len(vectors) != len(ids):
    raise ValueError(f"{path}: field vector: expected one vector per item_id, "
                     f"got shape {vectors.shape} for {len(ids)} ids")
  unique, first_row, counts = np.unique(ids, return_index=True,
                                        return_counts=True)
  if (counts > 1).any():
    repeated = unique[counts > 1][0]
    raise ValueError(f"{path}: row {int(first_row[counts > 1][0])}: item_id "
                     f"{repeated!r} appears {int(counts[counts > 1][0])} times")
  return dict(zip(ids, vectors.astype(np.float32)))


def load_item_vectors(path: str | os.PathLike, item_ids: Sequence[str]
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Reads a vector file into a table aligned with `item_ids`.

  Items without a vector (and the padding row, id "") get the zero vector;
  vectors of items not in `item_ids` are read and ignored.

  Args:
    path: the file; its extension picks the format (module docstring).
    item_ids: raw item id of every item index.

  Returns:
    `([len(item_ids), dim] float32 table, [len(item_ids)] bool found)`.

  Raises:
    ValueError: naming the file and line (or row) of a malformed entry, a
      vector of another width than the first one, or an item id given
      twice; or if the file holds no vector.
  """
  extension = os.path.splitext(str(path))[1].lower()
  vectors = (_read_binary(path, extension) if extension in _BINARY_FORMATS
             else _read_text(path))
  if not vectors:
    raise ValueError(f"{path} holds no vectors")
  width = len(next(iter(vectors.values())))
  table = np.zeros((len(item_ids), width), np.float32)
  found = np.array([bool(item_id) and item_id in vectors
                    for item_id in item_ids], bool)
  for index in np.flatnonzero(found):
    table[index] = vectors[item_ids[index]]
  return table, found
