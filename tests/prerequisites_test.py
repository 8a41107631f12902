"""A missing prerequisite skips on a clone, fails under CI, and is summed up."""

import pytest

from data import importers
from tests import prerequisites


@pytest.fixture
def no_shared_data(monkeypatch, tmp_path):
  missing = tmp_path / "no_such_data"
  monkeypatch.setenv(importers.DATA_DIR_ENV_VAR, str(missing))
  return missing


def test_missing_dataset_fails_under_ci(monkeypatch, no_shared_data):
  monkeypatch.setenv(prerequisites.CI_ENV_VAR, "true")
  with pytest.raises(pytest.fail.Exception,
                     match=f"movielens-100k.*not under {no_shared_data}"):
    prerequisites.shared_data_root("movielens-100k")


def test_missing_dataset_skips_outside_ci(monkeypatch, no_shared_data):
  monkeypatch.delenv(prerequisites.CI_ENV_VAR, raising=False)
  with pytest.raises(pytest.skip.Exception,
                     match=importers.DATA_DIR_ENV_VAR):
    prerequisites.shared_data_root("movielens-100k")


def test_present_dataset_gives_the_shared_data_root(monkeypatch, tmp_path):
  monkeypatch.setenv(prerequisites.CI_ENV_VAR, "true")
  monkeypatch.setenv(importers.DATA_DIR_ENV_VAR, str(tmp_path))
  (tmp_path / "movielens-100k").mkdir()
  assert prerequisites.shared_data_root("movielens-100k") == tmp_path


@pytest.mark.parametrize("ask, name, missing", [
    (prerequisites.module, "no_such_package.submodule", "no_such_package"),
    (prerequisites.program, "no-such-program", "no-such-program"),
], ids=["package", "program"])
def test_missing_package_or_program_fails_under_ci_and_skips_outside(
    monkeypatch, ask, name, missing):
  monkeypatch.setenv(prerequisites.CI_ENV_VAR, "true")
  with pytest.raises(pytest.fail.Exception, match=missing):
    ask(name)
  monkeypatch.setenv(prerequisites.CI_ENV_VAR, "false")
  with pytest.raises(pytest.skip.Exception, match=missing):
    ask(name)


def test_present_program_gives_its_path(monkeypatch):
  monkeypatch.setenv(prerequisites.CI_ENV_VAR, "true")
  assert prerequisites.program("sh").endswith("/sh")


def _skip_report(reason: str) -> pytest.TestReport:
  return pytest.TestReport(
      nodeid="a_test.py::test", location=("a_test.py", 1, "test"), keywords={},
      outcome="skipped", when="setup",
      longrepr=("a_test.py", 1, f"Skipped: {reason}"))


def test_summary_counts_tests_per_missing_prerequisite(monkeypatch,
                                                      no_shared_data):
  monkeypatch.delenv(prerequisites.CI_ENV_VAR, raising=False)
  reasons = []
  for name in ["movielens-100k", "movielens-100k", "amazon-grocery"]:
    with pytest.raises(pytest.skip.Exception) as skipped:
      prerequisites.shared_data_root(name)
    reasons.append(skipped.value.msg)
  with pytest.raises(pytest.skip.Exception) as skipped:
    prerequisites.module("no_such_package")
  reasons.append(skipped.value.msg)
  with pytest.raises(pytest.skip.Exception) as skipped:
    prerequisites.program("no-such-program")
  reasons.append(skipped.value.msg)
  # A skip for another cause, as the `local_only` serving tests make.
  reasons.append("tests serving.server's own features")

  summary = prerequisites.not_run_summary(map(_skip_report, reasons))

  assert summary == (
      f"NOT RUN: 3 tests need shared data not under {no_shared_data} "
      "(amazon-grocery, movielens-100k; set VREC_DATA_DIR); 1 test needs "
      "Python packages (no_such_package; pip install -r requirements.txt "
      "-r requirements-dev.txt); 1 test needs programs (no-such-program; "
      "scripts/bootstrap.sh installs them with apt-get)")


def test_no_summary_when_every_prerequisite_is_there():
  assert prerequisites.not_run_summary(
      [_skip_report("tests serving.server's own features")]) is None
