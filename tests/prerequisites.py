"""What a test needs that a clone may lack: the shared data, a Python
package, a program.

Tests ask through `shared_data_root`, `module` and `program` instead of
skipping on their own. On a developer's clone a missing prerequisite skips the test; under CI
(`CI=true`, as CI services set it) it fails the test, so that a green CI run
cannot hide a tier that did not run. The root `conftest.py` closes a run with
`not_run_summary`: one line that counts the tests skipped here and says what
they lacked.
"""

from __future__ import annotations

import collections
import importlib
import os
import pathlib
import shutil
import types
from typing import Iterable, NoReturn, Optional

import pytest

from data import importers

CI_ENV_VAR = "CI"
# Every skip reason written here starts with one of these; the summary finds
# its skips among the others (e.g. `local_only` serving tests) by them.
DATA_PREFIX = "needs shared data: "
PACKAGE_PREFIX = "needs Python package: "
PROGRAM_PREFIX = "needs program: "
# Ends the name of the missing thing in a reason; the details follow it.
_DETAILS_SEPARATOR = " ("
_INSTALL = "pip install -r requirements.txt -r requirements-dev.txt"
# scripts/bootstrap.sh installs the Debian packages of the test programs.
_INSTALL_PROGRAMS = "scripts/bootstrap.sh installs them with apt-get"


def running_in_ci() -> bool:
  """Whether this is a CI run, which must not skip for want of a prerequisite."""
  return os.environ.get(CI_ENV_VAR, "").strip().lower() in ("true", "1", "yes")


def _missing(prefix: str, what: str, details: str) -> NoReturn:
  """Skips the current test, or fails it under CI, naming what is missing."""
  reason = f"{prefix}{what}{_DETAILS_SEPARATOR}{details})"
  if running_in_ci():
    pytest.fail(f"{reason}; {CI_ENV_VAR}={os.environ[CI_ENV_VAR]} runs every "
                "test, so a missing prerequisite fails instead of skipping",
                pytrace=False)
  pytest.skip(reason)


def shared_data_root(dataset: str) -> pathlib.Path:
  """The shared data folder, once it is known to hold `dataset`.

  Args:
    dataset: the folder under the shared data folder the test reads, e.g.
      "movielens-100k".

  Returns:
    `importers.default_source_root()`, the folder the importers read.
  """
  root = importers.default_source_root()
  if not (root / dataset).is_dir():
    _missing(DATA_PREFIX, dataset,
             f"not under {root}; set {importers.DATA_DIR_ENV_VAR}")
  return root


def module(name: str) -> types.ModuleType:
  """Imports `name`, from a package the requirements files pin for the tests."""
  try:
    return importlib.import_module(name)
  except ImportError as error:
    _missing(PACKAGE_PREFIX, name.split(".")[0], f"{error}; {_INSTALL}")


def program(name: str) -> str:
  """The path of program `name` on PATH, one that scripts/bootstrap.sh
  installs for the tests (e.g. `redis-server`)."""
  path = shutil.which(name)
  if path is None:
    _missing(PROGRAM_PREFIX, name, f"not on PATH; {_INSTALL_PROGRAMS}")
  return path


def _skip_reason(report: pytest.TestReport) -> str:
  # A skip's longrepr is (path, line, "Skipped: <reason>").
  if isinstance(report.longrepr, tuple):
    return report.longrepr[2].removeprefix("Skipped: ")
  return ""


def _tests_need(count: int) -> str:
  return f"{count} test needs" if count == 1 else f"{count} tests need"


def not_run_summary(skipped: Iterable[pytest.TestReport]) -> Optional[str]:
  """One line on the tests skipped for a missing prerequisite, or None.

  Args:
    skipped: the run's skip reports (`terminalreporter.stats["skipped"]`).
  """
  tests_by_prefix = collections.Counter()
  missing_by_prefix = collections.defaultdict(set)
  for report in skipped:
    reason = _skip_reason(report)
    for prefix in (DATA_PREFIX, PACKAGE_PREFIX, PROGRAM_PREFIX):
      if reason.startswith(prefix):
        tests_by_prefix[prefix] += 1
        what = reason.removeprefix(prefix).split(_DETAILS_SEPARATOR)[0]
        missing_by_prefix[prefix].add(what)
  if not tests_by_prefix:
    return None
  parts = []
  if tests_by_prefix[DATA_PREFIX]:
    parts.append(
        f"{_tests_need(tests_by_prefix[DATA_PREFIX])} shared data not under "
        f"{importers.default_source_root()} "
        f"({', '.join(sorted(missing_by_prefix[DATA_PREFIX]))}; set "
        f"{importers.DATA_DIR_ENV_VAR})")
  if tests_by_prefix[PACKAGE_PREFIX]:
    parts.append(
        f"{_tests_need(tests_by_prefix[PACKAGE_PREFIX])} Python packages "
        f"({', '.join(sorted(missing_by_prefix[PACKAGE_PREFIX]))}; {_INSTALL})")
  if tests_by_prefix[PROGRAM_PREFIX]:
    parts.append(
        f"{_tests_need(tests_by_prefix[PROGRAM_PREFIX])} programs "
        f"({', '.join(sorted(missing_by_prefix[PROGRAM_PREFIX]))}; "
        f"{_INSTALL_PROGRAMS})")
  return "NOT RUN: " + "; ".join(parts)
