"""The input data contract's rules: each table's columns and how every value is checked.

The `normalize_*` functions validate a raw table, whether parsed from a file by
`data.contract` or built in memory by an importer, and normalise it to fixed
columns and dtypes, so the rest of the pipeline never sees raw user data. Any
violation raises `DataValidationError`, which names the file, the row and the
field; a `RowLocator` turns a frame position into the row number its user looks
for. `data.contract` is the entry point and re-exports the public names here.

See docs/data_contract.md for the user-facing description. This module is pure
pandas/numpy on purpose: it runs before, and without, TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
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
class RowLocator:
  """Turns a 0-based frame position into the row number a user looks for.

  Attributes:
    path: The file the frame was read from, or the name of an in-memory table.
    row_unit: "line" for CSV, "row" for Parquet and DataFrames.
    line_numbers: For CSV, the line each frame row starts on (a quoted field
      may span lines); None where rows are named by their position.
  """

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


# ---------------------------------------------------------------- normalising tables


def normalize_interactions(
  frame: pd.DataFrame, source: str | RowLocator = "<DataFrame>"
) -> pd.DataFrame:
  """Validates an interactions table and normalises its columns and dtypes.

  Importers use this so that their data obeys the same contract as files; the
  file readers of `data.contract` use it on the raw columns they parsed.

  Args:
    frame: Raw columns; values may be strings or native numbers/datetimes.
    source: Names the table in error messages: a name used in place of a file
      path (rows are then 0-based positions), or the `RowLocator` of the file
      it was read from.

  Returns:
    A DataFrame with columns `INTERACTION_COLUMNS` (see `Dataset`).

  Raises:
    DataValidationError: If the table breaks the contract.
  """
  locator = _locator(source)
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


def normalize_items(
  frame: pd.DataFrame, source: str | RowLocator = "<DataFrame>"
) -> pd.DataFrame:
  """Validates an items table; see `normalize_interactions`."""
  return _normalize_keyed_table(frame, _locator(source), "item_id", _ITEM_TEXT_DEFAULTS)


def normalize_users(
  frame: pd.DataFrame, source: str | RowLocator = "<DataFrame>"
) -> pd.DataFrame:
  """Validates a users table; see `normalize_interactions`. Every attribute is kept, as str."""
  attributes = {name: "" for name in frame.columns if name != "user_id"}
  return _normalize_keyed_table(frame, _locator(source), "user_id", attributes)


def _normalize_keyed_table(
  frame: pd.DataFrame, locator: RowLocator, key: str, text_defaults: dict[str, str]
) -> pd.DataFrame:
  """A table of unique `key` ids, then the columns of `text_defaults` as str."""
  _require_columns(frame, (key,), locator)
  _require_rows(frame, locator)
  columns = {key: _unique_id_values(frame[key], key, locator)}
  for name, default in text_defaults.items():
    columns[name] = _text_values(frame, name, default)
  return pd.DataFrame(columns, columns=[key, *text_defaults])


def _locator(source: str | RowLocator) -> RowLocator:
  """A table without a file names its rows by their 0-based position."""
  return source if isinstance(source, RowLocator) else RowLocator(source, "row")


def _require_columns(frame: pd.DataFrame, required: Sequence[str], locator: RowLocator) -> None:
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


def _require_rows(frame: pd.DataFrame, locator: RowLocator) -> None:
  if frame.empty:
    raise locator.error("contains no data rows, only a header")


# ---------------------------------------------------------------- normalising columns


_Check = tuple[pd.Series, Callable[[str], str]]


def _raise_first_problem(
  checks: Sequence[_Check], shown: pd.Series, field: str, locator: RowLocator
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


def _id_values(series: pd.Series, field: str, locator: RowLocator) -> np.ndarray:
  values = _as_strings(series)
  empty = values.str.strip() == ""
  checks = [(empty, lambda _: f"{field} is empty; every row needs one")]
  _raise_first_problem(checks, values, field, locator)
  return values.to_numpy(dtype=object)


def _unique_id_values(series: pd.Series, field: str, locator: RowLocator) -> np.ndarray:
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


def _timestamp_values(series: pd.Series, locator: RowLocator) -> np.ndarray:
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


def _label_values(frame: pd.DataFrame, locator: RowLocator) -> np.ndarray:
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
