"""External `item_id -> vector` text files, e.g. precomputed image vectors.

One item per line: the raw item id, a tab, then the vector's values
separated by commas or spaces. Blank lines are skipped. Every error names the
file, the line and the field (`item_id` or `vector`) at fault.
"""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import numpy as np


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


def load_item_vectors(path: str | os.PathLike,
                      item_ids: Sequence[str]) -> np.ndarray:
  """Reads a vector file into a table aligned with `item_ids`.

  Items without a line (and the padding row, id "") get the zero vector;
  lines of items not in `item_ids` are read and ignored.

  Args:
    path: the file.
    item_ids: raw item id of every item index.

  Returns:
    `[len(item_ids), dim]` float32.

  Raises:
    ValueError: naming the file and line of a malformed line, a vector of
      another width than the first one, or an item id given twice; or if the
      file holds no vector.
  """
  vectors: dict[str, np.ndarray] = {}
  line_of_item: dict[str, int] = {}
  for line_number, line in enumerate(
      pathlib.Path(path).read_text().splitlines(), 1):
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
  if not vectors:
    raise ValueError(f"{path} holds no vectors")
  table = np.zeros((len(item_ids), width), np.float32)
  for index, item_id in enumerate(item_ids):
    if item_id in vectors:
      table[index] = vectors[item_id]
  return table
