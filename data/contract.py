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
from typing import Iterator, Sequence, Union

import pandas as pd
import pyarrow
import pyarrow.parquet

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
# Rows per chunk of `read_interaction_chunks`: tens of MiB.
DEFAULT_CHUNK_ROWS = 100_000


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
  interactions_path, items_path, users_path = find_dataset_files(directory)
  return Dataset(
    interactions=read_interactions(interactions_path),
    items=read_items(items_path) if items_path else None,
    users=read_users(users_path) if users_path else None,
  )


def find_dataset_files(directory: PathLike) -> tuple[str, str | None, str | None]:
  """The interactions, items and users files of a dataset directory.

  Returns:
    `(interactions, items, users)`; items and users are None when absent.

  Raises:
    FileNotFoundError: If `directory` does not exist.
    DataValidationError: If the interactions file is missing or a file exists
      in both formats.
  """
  directory = os.fspath(directory)
  if not storage.isdir(directory):
    raise FileNotFoundError(f"dataset directory not found: {directory}")
  return (_find_contract_file(directory, "interactions", required=True),
          _find_contract_file(directory, "items", required=False),
          _find_contract_file(directory, "users", required=False))


def read_interaction_chunks(path: PathLike, chunk_rows: int = DEFAULT_CHUNK_ROWS
                            ) -> Iterator[pd.DataFrame]:
  """Reads and validates an interactions file, `chunk_rows` rows at a time.

  For logs too large to hold at once: only one chunk is in memory. Each chunk
  is validated and normalised as `read_interactions` does, with the same
  errors naming file, row and field (of several problems, the earliest
  chunk's is raised first).

  Args:
    path: An `.csv` or `.parquet` file following the contract.
    chunk_rows: Rows per chunk.

  Yields:
    DataFrames with columns `INTERACTION_COLUMNS`, indexed by each row's
    0-based position among the file's data rows (the file order).

  Raises:
    DataValidationError: If the file breaks the contract.
    FileNotFoundError: If the file does not exist.
  """
  for frame, locator, offset in _table_chunks(path, chunk_rows):
    chunk = normalize_interactions(frame, locator)
    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
    yield chunk


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
  ((frame, locator, _),) = _table_chunks(path, None)
  return frame, locator


def _table_chunks(path: PathLike, chunk_rows: int | None
                  ) -> Iterator[tuple[pd.DataFrame, contract_rules.RowLocator, int]]:
  """Raw columns of a contract file, `chunk_rows` rows at a time (None: all).

  Yields:
    `(frame, locator, offset)`: the chunk, the names of its rows, and the
    position of its first row among the file's data rows. At least one
    chunk, possibly empty.
  """
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
    return _csv_chunks(path, chunk_rows)
  if chunk_rows is None:
    return iter([(*_read_parquet(path), 0)])
  return _parquet_chunks(path, chunk_rows)


def _csv_chunks(path: str, chunk_rows: int | None
                ) -> Iterator[tuple[pd.DataFrame, contract_rules.RowLocator, int]]:
  """Parses a CSV with the csv module so each record keeps its line number."""
  with storage.open_file(path, "rb") as raw:
    # "utf-8-sig": spreadsheet tools often add a byte-order mark.
    lines = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
      yield from _parse_csv(lines, path, chunk_rows)
    except UnicodeDecodeError:
      # Only the whole file tells the line and byte offset of the bad byte.
      _decode_utf8(storage.read_bytes(path), path)
      raise


def _parse_csv(lines: Iterator[str], path: str, chunk_rows: int | None
               ) -> Iterator[tuple[pd.DataFrame, contract_rules.RowLocator, int]]:
  reader = csv.reader(lines)
  records, line_numbers, offset = [], [], 0

  def chunk():
    frame = pd.DataFrame(records, columns=header, dtype=object)
    return frame, contract_rules.RowLocator(path, "line", line_numbers), offset

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
      if len(records) == chunk_rows:
        yield chunk()
        offset += len(records)
        records, line_numbers = [], []
  except csv.Error as error:
    raise DataValidationError(path, f"malformed CSV: {error}", row=reader.line_num) from None
  if records or offset == 0:
    yield chunk()


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


def _parquet_chunks(path: str, chunk_rows: int
                    ) -> Iterator[tuple[pd.DataFrame, contract_rules.RowLocator, int]]:
  offset = 0
  with storage.open_file(path, "rb") as stream:
    try:
      parquet_file = pyarrow.parquet.ParquetFile(stream)
      batches = parquet_file.iter_batches(batch_size=chunk_rows)
      for batch in batches:
        frame = pyarrow.Table.from_batches(
          [batch], schema=parquet_file.schema_arrow).to_pandas()
        frame = frame.reset_index(drop=True)
        frame.columns = [str(name) for name in frame.columns]
        yield frame, contract_rules.RowLocator(
          path, "row", range(offset, offset + len(frame))), offset
        offset += len(frame)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError.
      raise DataValidationError(path, f"cannot read as Parquet: {error}") from None
