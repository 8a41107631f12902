"""The input data contract: which files a dataset directory holds and how they are checked.

A dataset directory contains `interactions.csv` or `interactions.parquet`
(required) and, optionally, `items.*` and `users.*` in the same formats. The
readers here validate every value and normalise it to fixed columns and dtypes,
so the rest of the pipeline never sees raw user files. Any violation raises
`DataValidationError`, which names the file, the row and the field.

See docs/data_contract.md for the user-facing description. This module is pure
pandas/numpy on purpose: it runs before, and without, TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import pathlib
from typing import Callable, Sequence, Union

import numpy as np
import pandas as pd

PathLike = Union[str, os.PathLike]

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "label", "event", "item_type", "query")
ITEM_COLUMNS = ("item_id", "title", "category", "related_items", "complement_items",
                "substitute_items")
REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")

DEFAULT_LABEL = 1.0
DEFAULT_ITEM_TYPE = "item"
# Documented, not enforced: the TFX schema and ExampleValidator flag drift later.
DOCUMENTED_ITEM_TYPES = ("item", "video")
LIST_SEPARATOR = "|"
SUPPORTED_EXTENSIONS = (".csv", ".parquet")
WRITE_FORMATS = ("csv", "parquet")

_INTERACTION_TEXT_DEFAULTS = {"event": "", "item_type": DEFAULT_ITEM_TYPE, "query": ""}
_ITEM_TEXT_DEFAULTS = {"title": "", "category": "", "related_items": "",
                       "complement_items": "", "substitute_items": ""}

# 9999-12-31T23:59:59Z. Larger values are almost always milliseconds.
_MAX_UNIX_SECONDS = 253_402_300_799
_UNIX_SECONDS_PATTERN = r"[+-]?\d+(?:\.\d*)?"
_ISO_8601_PATTERN = (
  r"\d{4}-\d{2}-\d{2}"
  r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
# pandas >= 2 infers one format from the first value unless told "ISO8601";
# pandas 1.x parses each value on its own and has no such option.
_ISO_8601_FORMAT = {"format": "ISO8601"} if int(pd.__version__.split(".")[0]) >= 2 else {}
_MAX_COLUMNS_IN_MESSAGE = 12


class DataValidationError(ValueError):
  """A dataset file breaks the input data contract.

  Attributes:
    path: The file (or directory) at fault, as given by the caller.
    row: Where the problem is, or None when it concerns the whole file. For
      CSV this is the physical line number (the header is line 1, the first
      data row line 2). For Parquet files and in-memory DataFrames it is the
      0-based row position, i.e. `pd.read_parquet(path).iloc[row]`.
    field: The column at fault, or None.
    reason: What is wrong, in words meant for the person who made the file.
    row_unit: "line" for CSV, "row" for Parquet and DataFrames.
  """

  def __init__(
    self,
    path: PathLike,
    reason: str,
    *,
    row: int | None = None,
    field: str | None = None,
    row_unit: str = "line",
  ):
    self.path = str(path)
    self.row = row
    self.field = field
    self.reason = reason
    self.row_unit = row_unit
    super().__init__(self._message())

  def _message(self) -> str:
    location = self.path
    if self.row is not None:
      location += f" {self.row_unit} {self.row}"
    if self.field is not None:
      location += f", field {self.field!r}"
    return f"{location}: {self.reason}"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A validated dataset, as every later pipeline stage receives it.

  Attributes:
    interactions: Columns exactly `INTERACTION_COLUMNS`; `timestamp` is int64
      unix seconds, `label` float64 in [0, 1], all other columns str.
    items: None, or columns exactly `ITEM_COLUMNS`, all str. Item ids in
      `interactions` need not appear here; such items simply have no side
      information.
    users: None, or `user_id` followed by attribute columns, all str.
  """

  interactions: pd.DataFrame
  items: pd.DataFrame | None = None
  users: pd.DataFrame | None = None

  def __post_init__(self):
    # Catches adapters that build frames by hand instead of normalising them.
    _check_columns("interactions", self.interactions, INTERACTION_COLUMNS)
    if self.items is not None:
      _check_columns("items", self.items, ITEM_COLUMNS)
    if self.users is not None and list(self.users.columns[:1]) != ["user_id"]:
      raise ValueError(
        "Dataset.users must start with column 'user_id'; "
        "build it with normalize_users()"
      )


def _check_columns(name: str, frame: pd.DataFrame, expected: Sequence[str]) -> None:
  if tuple(frame.columns) != tuple(expected):
    raise ValueError(
      f"Dataset.{name} must have columns {list(expected)}, got {list(frame.columns)}; "
      f"build it with normalize_{name}()"
    )


@dataclasses.dataclass(frozen=True)
class _RowLocator:
  """Turns a 0-based frame position into the row number a user looks for."""

  path: str
  row_unit: str
  line_numbers: Sequence[int] | None = None

  def row_number(self, position: int) -> int:
    if self.line_numbers is None:
      return position
    return self.line_numbers[position]

  def error(
    self, reason: str, *, position: int | None = None, field: str | None = None
  ) -> DataValidationError:
    row = None if position is None else self.row_number(position)
    return DataValidationError(
      self.path, reason, row=row, field=field, row_unit=self.row_unit
    )


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
  frame, locator = _read_table(path)
  return _normalize_interactions(frame, locator)


def read_items(path: PathLike) -> pd.DataFrame:
  """Reads and validates an items file; see `read_interactions`."""
  frame, locator = _read_table(path)
  return _normalize_items(frame, locator)


def read_users(path: PathLike) -> pd.DataFrame:
  """Reads and validates a users file; see `read_interactions`."""
  frame, locator = _read_table(path)
  return _normalize_users(frame, locator)


def normalize_interactions(frame: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
  """Validates an in-memory interactions frame exactly as a file would be.

  Adapters use this so that imported data obeys the same contract as files.

  Args:
    frame: Raw columns; values may be strings or native numbers/datetimes.
    source: Name used in error messages in place of a file path.

  Returns:
    A DataFrame with columns `INTERACTION_COLUMNS`.
  """
  return _normalize_interactions(frame, _RowLocator(source, "row"))


def normalize_items(frame: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
  """Validates an in-memory items frame; see `normalize_interactions`."""
  return _normalize_items(frame, _RowLocator(source, "row"))


def normalize_users(frame: pd.DataFrame, source: str = "<DataFrame>") -> pd.DataFrame:
  """Validates an in-memory users frame; see `normalize_interactions`."""
  return _normalize_users(frame, _RowLocator(source, "row"))


def load_dataset(directory: PathLike) -> Dataset:
  """Reads a dataset directory.

  Args:
    directory: Holds `interactions.{csv,parquet}` and optionally
      `items.{csv,parquet}` and `users.{csv,parquet}`.

  Returns:
    The validated `Dataset`.

  Raises:
    FileNotFoundError: If `directory` does not exist.
    DataValidationError: If the interactions file is missing, a file exists
      in both formats, or any file breaks the contract.
  """
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise FileNotFoundError(f"dataset directory not found: {directory}")
  interactions_path = _find_contract_file(directory, "interactions", required=True)
  items_path = _find_contract_file(directory, "items", required=False)
  users_path = _find_contract_file(directory, "users", required=False)
  return Dataset(
    interactions=read_interactions(interactions_path),
    items=read_items(items_path) if items_path else None,
    users=read_users(users_path) if users_path else None,
  )


def write_dataset(dataset: Dataset, directory: PathLike, fmt: str = "csv") -> pathlib.Path:
  """Writes `dataset` as a contract directory that `load_dataset` reads back.

  Contract files already in `directory` (in either format) are removed first,
  so that a stale `items.csv` cannot be mistaken for part of this dataset.

  Args:
    dataset: The dataset to write.
    directory: Created if missing.
    fmt: "csv" or "parquet".

  Returns:
    The directory, as a `pathlib.Path`.
  """
  if fmt not in WRITE_FORMATS:
    raise ValueError(f"fmt must be one of {WRITE_FORMATS}, got {fmt!r}")
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  tables = {"interactions": dataset.interactions, "items": dataset.items, "users": dataset.users}
  for stem, frame in tables.items():
    for extension in SUPPORTED_EXTENSIONS:
      (directory / f"{stem}{extension}").unlink(missing_ok=True)
    if frame is None:
      continue
    path = directory / f"{stem}.{fmt}"
    if fmt == "csv":
      frame.to_csv(path, index=False, encoding="utf-8")
    else:
      frame.to_parquet(path, index=False)
  return directory


# ---------------------------------------------------------------- finding and reading files


def _find_contract_file(directory: pathlib.Path, stem: str, required: bool) -> pathlib.Path | None:
  candidates = [directory / f"{stem}{extension}" for extension in SUPPORTED_EXTENSIONS]
  found = [path for path in candidates if path.is_file()]
  if len(found) > 1:
    names = " and ".join(path.name for path in found)
    raise DataValidationError(directory, f"found both {names}; keep exactly one")
  if found:
    return found[0]
  if required:
    others = sorted(path.name for path in directory.glob(f"{stem}.*"))
    hint = f" (found {', '.join(others)}, an unsupported format)" if others else ""
    raise DataValidationError(
      directory, f"no {stem}.csv or {stem}.parquet found{hint}"
    )
  return None


def _read_table(path: PathLike) -> tuple[pd.DataFrame, _RowLocator]:
  """Reads a contract file into raw columns plus a way to name its rows."""
  path = pathlib.Path(path)
  extension = path.suffix.lower()
  if extension not in SUPPORTED_EXTENSIONS:
    raise DataValidationError(
      path,
      f"unsupported file extension {path.suffix!r}; expected one of "
      f"{', '.join(SUPPORTED_EXTENSIONS)}",
    )
  if not path.is_file():
    raise FileNotFoundError(f"data file not found: {path}")
  if path.stat().st_size == 0:
    raise DataValidationError(
      path, "file is empty (0 bytes); expected a header row followed by data rows"
    )
  if extension == ".csv":
    return _read_csv(path)
  return _read_parquet(path)


def _read_csv(path: pathlib.Path) -> tuple[pd.DataFrame, _RowLocator]:
  """Parses a CSV with the csv module so each record keeps its line number."""
  text = _decode_utf8(path.read_bytes(), path)
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
  return frame, _RowLocator(str(path), "line", line_numbers)


def _decode_utf8(raw: bytes, path: pathlib.Path) -> str:
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


def _check_unique_header(header: Sequence[str], path: pathlib.Path) -> None:
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


def _read_parquet(path: pathlib.Path) -> tuple[pd.DataFrame, _RowLocator]:
  try:
    frame = pd.read_parquet(path)
  except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError.
    raise DataValidationError(path, f"cannot read as Parquet: {error}") from None
  frame = frame.reset_index(drop=True)
  frame.columns = [str(name) for name in frame.columns]
  return frame, _RowLocator(str(path), "row")


# ---------------------------------------------------------------- normalising tables


def _normalize_interactions(frame: pd.DataFrame, locator: _RowLocator) -> pd.DataFrame:
  _require_columns(frame, REQUIRED_INTERACTION_COLUMNS, locator)
  _require_rows(frame, locator)
  columns = {
    "user_id": _id_values(frame["user_id"], "user_id", locator),
    "item_id": _id_values(frame["item_id"], "item_id", locator),
    "timestamp": _timestamp_values(frame["timestamp"], locator),
    "label": _label_values(frame, locator),
  }
  for name, default in _INTERACTION_TEXT_DEFAULTS.items():
    columns[name] = _text_values(frame, name, default)
  return pd.DataFrame(columns, columns=list(INTERACTION_COLUMNS))


def _normalize_items(frame: pd.DataFrame, locator: _RowLocator) -> pd.DataFrame:
  _require_columns(frame, ("item_id",), locator)
  _require_rows(frame, locator)
  columns = {"item_id": _unique_id_values(frame["item_id"], "item_id", locator)}
  for name, default in _ITEM_TEXT_DEFAULTS.items():
    columns[name] = _text_values(frame, name, default)
  return pd.DataFrame(columns, columns=list(ITEM_COLUMNS))


def _normalize_users(frame: pd.DataFrame, locator: _RowLocator) -> pd.DataFrame:
  _require_columns(frame, ("user_id",), locator)
  _require_rows(frame, locator)
  columns = {"user_id": _unique_id_values(frame["user_id"], "user_id", locator)}
  for name in frame.columns:
    if name != "user_id":
      columns[name] = _text_values(frame, name, "")
  return pd.DataFrame(columns)


def _require_columns(frame: pd.DataFrame, required: Sequence[str], locator: _RowLocator) -> None:
  missing = [name for name in required if name not in frame.columns]
  if not missing:
    return
  found = [str(name) for name in frame.columns]
  shown = ", ".join(repr(name) for name in found[:_MAX_COLUMNS_IN_MESSAGE])
  if len(found) > _MAX_COLUMNS_IN_MESSAGE:
    shown += ", ..."
  raise locator.error(
    f"missing required column {missing[0]!r} (required: {', '.join(required)}; "
    f"found: {shown}){_delimiter_hint(found)}",
    field=missing[0],
  )


def _delimiter_hint(columns: Sequence[str]) -> str:
  """Explains the usual cause of a missing column: the wrong separator."""
  if len(columns) != 1:
    return ""
  for delimiter, name in (("\t", "tab"), (";", "semicolon"), ("|", "pipe")):
    if delimiter in columns[0]:
      return (
        f"; the file looks {name}-separated, "
        "but the contract requires comma-separated CSV"
      )
  return ""


def _require_rows(frame: pd.DataFrame, locator: _RowLocator) -> None:
  if frame.empty:
    raise locator.error("contains no data rows, only a header")


# ---------------------------------------------------------------- normalising columns


_Check = tuple[pd.Series, Callable[[str], str]]


def _raise_first_problem(
  checks: Sequence[_Check], shown: pd.Series, field: str, locator: _RowLocator
) -> None:
  """Raises for the earliest row failing any check, so users fix top-down."""
  earliest = None
  for failed, describe in checks:
    positions = np.flatnonzero(failed.to_numpy(dtype=bool))
    if positions.size and (earliest is None or positions[0] < earliest[0]):
      earliest = (int(positions[0]), describe)
  if earliest is not None:
    position, describe = earliest
    raise locator.error(describe(shown.iloc[position]), position=position, field=field)


def _as_strings(series: pd.Series) -> pd.Series:
  """Renders any column as str, with missing values as ""."""
  missing = series.isna()
  if pd.api.types.is_float_dtype(series):
    # Integer columns with gaps arrive as floats; 12.0 should read as "12".
    rendered = series.map(
      lambda value: str(int(value)) if float(value).is_integer() else str(value)
    )
  else:
    rendered = series.astype(str)
  return rendered.where(~missing, "").reset_index(drop=True)


def _text_values(frame: pd.DataFrame, name: str, default: str) -> np.ndarray:
  if name not in frame.columns:
    return np.full(len(frame), default, dtype=object)
  values = _as_strings(frame[name])
  return values.where(values != "", default).to_numpy(dtype=object)


def _id_values(series: pd.Series, field: str, locator: _RowLocator) -> np.ndarray:
  values = _as_strings(series)
  empty = values.str.strip() == ""
  checks = [(empty, lambda _: f"{field} is empty; every row needs one")]
  _raise_first_problem(checks, values, field, locator)
  return values.to_numpy(dtype=object)


def _unique_id_values(series: pd.Series, field: str, locator: _RowLocator) -> np.ndarray:
  values = _id_values(series, field, locator)
  duplicated = pd.Series(values).duplicated()
  if duplicated.any():
    position = int(np.flatnonzero(duplicated.to_numpy())[0])
    first = int(np.flatnonzero(values == values[position])[0])
    raise locator.error(
      f"duplicate {field} {values[position]!r}; it first appears on "
      f"{locator.row_unit} {locator.row_number(first)}",
      position=position,
      field=field,
    )
  return values


def _timestamp_values(series: pd.Series, locator: _RowLocator) -> np.ndarray:
  seconds, shown, missing = _timestamp_seconds(series.reset_index(drop=True))
  checks = [
    (missing, lambda _: "is empty; every interaction needs a timestamp"),
    (
      seconds.isna() & ~missing,
      lambda value: f"cannot parse {value!r} as unix seconds or ISO-8601 datetime",
    ),
    (seconds < 0, lambda value: f"{value!r} is before 1970-01-01 (negative unix seconds)"),
    (
      seconds > _MAX_UNIX_SECONDS,
      lambda value: (
        f"{value!r} is after year 9999; timestamps must be seconds, not milliseconds"
      ),
    ),
  ]
  _raise_first_problem(checks, shown, "timestamp", locator)
  # Sub-second precision carries no signal for recommendation; keep whole seconds.
  return np.floor(seconds.to_numpy(dtype=np.float64)).astype(np.int64)


def _timestamp_seconds(series: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
  """Returns (float seconds or NaN, value as shown to users, missing mask)."""
  missing = series.isna()
  if pd.api.types.is_datetime64_any_dtype(series):
    return _datetimes_to_seconds(series), series.astype(str), missing
  if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
    return series.astype(np.float64), series.astype(str), missing
  text = _as_strings(series).str.strip()
  seconds = pd.Series(np.nan, index=text.index)
  is_number = text.str.fullmatch(_UNIX_SECONDS_PATTERN)
  seconds[is_number] = pd.to_numeric(text[is_number]).astype(np.float64)
  others = text[~is_number]
  iso_text = others[others.str.fullmatch(_ISO_8601_PATTERN)]
  if not iso_text.empty:
    parsed = pd.to_datetime(iso_text, utc=True, errors="coerce", **_ISO_8601_FORMAT)
    seconds[iso_text.index] = _datetimes_to_seconds(parsed)
  return seconds, text, text == ""


def _datetimes_to_seconds(datetimes: pd.Series) -> pd.Series:
  """Converts datetimes to float unix seconds; naive values are taken as UTC."""
  if datetimes.dt.tz is None:
    datetimes = datetimes.dt.tz_localize("UTC")
  return (datetimes - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _label_values(frame: pd.DataFrame, locator: _RowLocator) -> np.ndarray:
  if "label" not in frame.columns:
    return np.full(len(frame), DEFAULT_LABEL)
  series = frame["label"].reset_index(drop=True)
  if pd.api.types.is_numeric_dtype(series):
    numbers, shown, missing = series.astype(np.float64), series.astype(str), series.isna()
  else:
    shown = _as_strings(series).str.strip()
    missing = shown == ""
    numbers = pd.to_numeric(shown.where(~missing), errors="coerce")
  checks = [
    (numbers.isna() & ~missing, lambda value: f"cannot parse {value!r} as a number in [0, 1]"),
    (
      (numbers < 0) | (numbers > 1),
      lambda value: (
        f"{value!r} is outside [0, 1]; "
        "use 1 for a positive and 0 for a negative interaction"
      ),
    ),
  ]
  _raise_first_problem(checks, shown, "label", locator)
  return numbers.fillna(DEFAULT_LABEL).to_numpy(dtype=np.float64)
