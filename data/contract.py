"""The input data contract: which files a dataset directory holds and how they are read.

A dataset directory contains `interactions.csv` or `interactions.parquet`
(required) and, optionally, `items.*` and `users.*` in the same formats. The
readers here parse each file, keeping where every row came from, and validate
it with the rules of `data.contract_rules`, so any violation raises
`DataValidationError` naming the file, the row and the field. This module is
the contract's entry point: it re-exports the rules' public names, so callers
need only `data.contract`.

A directory is a local path or a URI (`s3://bucket/datasets/ml`); every file
is read and written through `data.storage`. See docs/data_contract.md for the
user-facing description. This module is pure pandas/numpy on purpose: it runs
before, and without, TensorFlow.
"""

from __future__ import annotations

import csv
import io
import os
import pathlib
import posixpath
from typing import Sequence, Union

import pandas as pd

from data import contract_rules
from data import storage

# The rules' public names, so that callers need only this module.
PathLike = contract_rules.PathLike
DataValidationError = contract_rules.DataValidationError
Dataset = contract_rules.Dataset
INTERACTION_COLUMNS = contract_rules.INTERACTION_COLUMNS
ITEM_COLUMNS = contract_rules.ITEM_COLUMNS
LIST_SEPARATOR = contract_rules.LIST_SEPARATOR
normalize_interactions = contract_rules.normalize_interactions
normalize_items = contract_rules.normalize_items
normalize_users = contract_rules.normalize_users

SUPPORTED_EXTENSIONS = (".csv", ".parquet")
WRITE_FORMATS = ("csv", "parquet")


# ---------------------------------------------------------------- public API

def read_interactions(path: PathLike) -> pd.DataFrame:
  """Reads and validates an interactions file.

  Args:
    path: An `.csv` or `.parquet` file following the contract.

  Returns:
    A DataFrame with columns `INTERACTION_COLUMNS` (see `Dataset`).

  Raises:
    DataValidationError: If the file breaks the contract.
    FileNotFoundError: If the file does not exist.
  """
  return normalize_interactions(*_read_table(path))


def read_items(path: PathLike) -> pd.DataFrame:
  """Reads and validates an items file; see `read_interactions`."""
  return normalize_items(*_read_table(path))


def read_users(path: PathLike) -> pd.DataFrame:
  """Reads and validates a users file; see `read_interactions`."""
  return normalize_users(*_read_table(path))


def load_dataset(directory: PathLike) -> Dataset:
  """Reads a dataset directory.

  Args:
    directory: Holds `interactions.{csv,parquet}` and optionally
      `items.{csv,parquet}` and `users.{csv,parquet}`; a local path or a URI.

  Returns:
    The validated `Dataset`.

  Raises:
    FileNotFoundError: If `directory` does not exist.
    DataValidationError: If the interactions file is missing, a file exists
      in both formats, or any file breaks the contract.
  """
  directory = os.fspath(directory)
  if not storage.isdir(directory):
    raise FileNotFoundError(f"dataset directory not found: {directory}")
  interactions_path = _find_contract_file(directory, "interactions", required=True)
  items_path = _find_contract_file(directory, "items", required=False)
  users_path = _find_contract_file(directory, "users", required=False)
  return Dataset(
    interactions=read_interactions(interactions_path),
    items=read_items(items_path) if items_path else None,
    users=read_users(users_path) if users_path else None,
  )


def write_dataset(dataset: Dataset, directory: PathLike,
                  fmt: str = "csv") -> Union[pathlib.Path, str]:
  """Writes `dataset` as a contract directory that `load_dataset` reads back.

  Contract files already in `directory` (in either format) are removed first,
  so that a stale `items.csv` cannot be mistaken for part of this dataset.

  Args:
    dataset: The dataset to write.
    directory: A local path (created if missing) or a URI (`s3://...`).
    fmt: "csv" or "parquet".

  Returns:
    The directory: a `pathlib.Path` for a local path, else the URI.
  """
  if fmt not in WRITE_FORMATS:
    raise ValueError(f"fmt must be one of {WRITE_FORMATS}, got {fmt!r}")
  directory = os.fspath(directory)
  storage.makedirs(directory)
  tables = {"interactions": dataset.interactions, "items": dataset.items, "users": dataset.users}
  for stem, frame in tables.items():
    for extension in SUPPORTED_EXTENSIONS:
      storage.remove(storage.join(directory, f"{stem}{extension}"))
    if frame is None:
      continue
    buffer = io.BytesIO()
    if fmt == "csv":
      frame.to_csv(buffer, index=False, encoding="utf-8")
    else:
      frame.to_parquet(buffer, index=False)
    storage.write_bytes(storage.join(directory, f"{stem}.{fmt}"), buffer.getvalue())
  return directory if storage.is_remote(directory) else pathlib.Path(directory)


# ---------------------------------------------------------------- finding and reading files


def _find_contract_file(directory: str, stem: str, required: bool) -> str | None:
  names = storage.listdir(directory)
  found = [f"{stem}{extension}" for extension in SUPPORTED_EXTENSIONS
           if f"{stem}{extension}" in names]
  if len(found) > 1:
    raise DataValidationError(directory, f"found both {' and '.join(found)}; keep exactly one")
  if found:
    return storage.join(directory, found[0])
  if required:
    others = [name for name in names if name.startswith(f"{stem}.")]
    hint = f" (found {', '.join(others)}, an unsupported format)" if others else ""
    raise DataValidationError(
      directory, f"no {stem}.csv or {stem}.parquet found{hint}"
    )
  return None


def _read_table(path: PathLike) -> tuple[pd.DataFrame, contract_rules.RowLocator]:
  """Reads a contract file into raw columns plus a way to name its rows."""
  path = os.fspath(path)
  suffix = posixpath.splitext(storage.name(path))[1]
  extension = suffix.lower()
  if extension not in SUPPORTED_EXTENSIONS:
    raise DataValidationError(
      path,
      f"unsupported file extension {suffix!r}; expected one of "
      f"{', '.join(SUPPORTED_EXTENSIONS)}",
    )
  if not storage.isfile(path):
    raise FileNotFoundError(f"data file not found: {path}")
  if storage.size(path) == 0:
    raise DataValidationError(
      path, "file is empty (0 bytes); expected a header row followed by data rows"
    )
  if extension == ".csv":
    return _read_csv(path)
  return _read_parquet(path)


def _read_csv(path: str) -> tuple[pd.DataFrame, contract_rules.RowLocator]:
  """Parses a CSV with the csv module so each record keeps its line number."""
  text = _decode_utf8(storage.read_bytes(path), path)
  reader = csv.reader(io.StringIO(text, newline=""))
  records, line_numbers = [], []
  try:
    header = next(reader, [])
    if not header:
      raise DataValidationError(path, "line 1 is empty; expected a header row", row=1)
    _check_unique_header(header, path)
    # A quoted field may span lines, so a record starts right after the last one ended.
    next_start = reader.line_num + 1
    for record in reader:
      start, next_start = next_start, reader.line_num + 1
      if not record:  # Blank lines carry no data; pandas skips them too.
        continue
      if len(record) != len(header):
        raise DataValidationError(
          path, _field_count_reason(len(header), len(record)), row=start
        )
      records.append(record)
      line_numbers.append(start)
  except csv.Error as error:
    raise DataValidationError(path, f"malformed CSV: {error}", row=reader.line_num) from None
  frame = pd.DataFrame(records, columns=header, dtype=object)
  return frame, contract_rules.RowLocator(path, "line", line_numbers)


def _decode_utf8(raw: bytes, path: str) -> str:
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as error:
    line = raw.count(b"\n", 0, error.start) + 1
    raise DataValidationError(
      path,
      f"not valid UTF-8: byte 0x{raw[error.start]:02x} at byte offset {error.start} "
      "cannot be decoded; save the file as UTF-8",
      row=line,
    ) from None
  return text.removeprefix("\ufeff")  # Spreadsheet tools often add a byte-order mark.


def _check_unique_header(header: Sequence[str], path: str) -> None:
  seen = set()
  for name in header:
    if name in seen:
      raise DataValidationError(path, f"column {name!r} appears twice in the header", row=1)
    seen.add(name)


def _field_count_reason(expected: int, found: int) -> str:
  reason = f"expected {expected} fields as in the header, found {found}"
  if found < expected:
    reason += " (is the line truncated?)"
  return reason


def _read_parquet(path: str) -> tuple[pd.DataFrame, contract_rules.RowLocator]:
  raw = storage.read_bytes(path)
  try:
    frame = pd.read_parquet(io.BytesIO(raw))
  except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError.
    raise DataValidationError(path, f"cannot read as Parquet: {error}") from None
  frame = frame.reset_index(drop=True)
  frame.columns = [str(name) for name in frame.columns]
  return frame, contract_rules.RowLocator(path, "row")
