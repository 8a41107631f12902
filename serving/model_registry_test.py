"""Tests of the version policy and the registry's version discovery."""

import pytest

from serving import model_registry


@pytest.mark.parametrize("text, available, served", [
    ("latest:1", {1, 2, 3}, {3}),
    ("latest:2", {1, 2, 3}, {2, 3}),
    ("all", {1, 2, 3}, {1, 2, 3}),
    ("specific:1,3", {1, 2}, {1}),
])
def test_version_policy_selects_versions(text, available, served):
  assert model_registry.VersionPolicy.parse(text).select(available) == served


@pytest.mark.parametrize("text", ["latest:0", "newest", "specific:", "all:2"])
def test_bad_version_policy_is_rejected(text):
  with pytest.raises(ValueError, match="version policy"):
    model_registry.VersionPolicy.parse(text)


def test_ready_versions_skips_unfinished_and_non_numeric_directories(
    tmp_path):
  for name in ("1", "2", "3", "latest", "-4"):
    (tmp_path / name).mkdir()
  for name in ("1", "3", "latest", "-4"):
    (tmp_path / name / "saved_model.pb").write_bytes(b"")
  (tmp_path / "7").write_text("a file, not a version directory")
  assert model_registry.ready_versions(str(tmp_path)) == {
      1: str(tmp_path / "1"), 3: str(tmp_path / "3")}
