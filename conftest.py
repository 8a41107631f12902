"""Test-wide setup: Keras 2 is selected (by importing `transforms`) before any
test module can load TensorFlow; the shared pipeline-run fixtures come from
`tests.pipeline_fixtures`; under pytest-xdist, tests are shared out by file
and shared pipeline run (`tests.scheduling`); the run ends with one line on
the tests that did not run for want of data or a package
(`tests.prerequisites`)."""

import os

import pytest

import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)

from tests import prerequisites
from tests import scheduling

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["tests.pipeline_fixtures"]


# Outermost wrapper: the line comes after pytest's own summaries, just above
# the final counts, where it is read.
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
  yield
  skipped = terminalreporter.stats.get("skipped", [])
  line = prerequisites.not_run_summary(skipped)
  if line:
    terminalreporter.write_line(line, yellow=True, bold=True)


# Before xdist's own hook, which appends the marked group to each test's id.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  scheduling.mark_units(items)


# Optional: `-p no:xdist` runs the suite in one process.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  return scheduling.FileUnitScheduling(config, log)
