"""Tests for the contract's column rules, on in-memory tables.

How files are parsed, and which line an error names, is tested in contract_test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from data import contract_rules
from data.contract_rules import DataValidationError


def _interactions(**extra_columns) -> pd.DataFrame:
  """One raw interaction, with values as strings, as a CSV reader gives them."""
  return pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "timestamp": ["5"], **extra_columns})


def test_optional_columns_get_defaults():
  frame = contract_rules.normalize_interactions(_interactions())

  assert frame.iloc[0].to_dict() == {
    "user_id": "u1", "item_id": "i1", "timestamp": 5, "label": 1.0,
    "event": "", "item_type": "item", "query": "",
  }


def test_undocumented_item_type_is_kept_for_the_schema_to_judge():
  frame = contract_rules.normalize_interactions(_interactions(item_type=["podcast"]))

  assert frame["item_type"].tolist() == ["podcast"]


def test_fractional_seconds_are_truncated():
  frame = contract_rules.normalize_interactions(_interactions(timestamp=["881250949.7"]))

  assert frame["timestamp"].tolist() == [881250949]


def test_normalize_interactions_reports_zero_based_rows():
  frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "timestamp": [5, -1]})

  with pytest.raises(DataValidationError, match="^importer row 1, field 'timestamp'"):
    contract_rules.normalize_interactions(frame, "importer")


def test_a_row_locator_names_the_line_a_row_starts_on():
  frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", ""], "timestamp": ["5", "6"]})
  locator = contract_rules.RowLocator("shop.csv", "line", line_numbers=[2, 4])

  expected = "^shop.csv line 4, field 'item_id': item_id is empty"
  with pytest.raises(DataValidationError, match=expected):
    contract_rules.normalize_interactions(frame, locator)


def test_dataset_rejects_unnormalised_frames():
  with pytest.raises(ValueError, match="normalize_interactions"):
    contract_rules.Dataset(pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "timestamp": [5]}))
