"""Tests for how the suite is shared between pytest-xdist workers."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from tests import scheduling

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

pytest_plugins = ["pytester"]

_CONFTEST = """
import os
import pathlib

import pytest

from tests import scheduling

BUILT = pathlib.Path(os.environ["BUILT_DIR"])


def _record(name):
  worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
  (BUILT / f"{name}-{worker}-{os.getpid()}").touch()


@pytest.fixture(scope="session")
def sample_runs():
  _record("sample_runs")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  scheduling.mark_units(items)


def pytest_xdist_make_scheduler(config, log):
  return scheduling.FileUnitScheduling(config, log)
"""

_MODULE_FIXTURE = """
import pytest

from conftest import _record


@pytest.fixture(scope="module")
def compiled_run():
  _record("compiled_run")
"""


def test_a_shared_run_and_a_file_fixture_are_each_built_once(
    pytester, tmp_path, monkeypatch):
  built = tmp_path / "built"
  built.mkdir()
  monkeypatch.setenv("BUILT_DIR", str(built))
  monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
  pytester.makeconftest(_CONFTEST)
  # Four files use the shared run; the e2e file's tests are many enough that
  # per-test scheduling would split them between the two workers.
  for name in ("pipeline", "report", "summary", "serving"):
    pytester.makepyfile(**{f"{name}_test": textwrap.dedent(f"""
        def test_{name}_one(sample_runs):
          pass

        def test_{name}_two(sample_runs):
          pass
        """)})
  pytester.makepyfile(kubeflow_test=_MODULE_FIXTURE + "".join(
      f"\n@pytest.mark.e2e\ndef test_task_{index}(compiled_run):\n  pass\n"
      for index in range(6)))
  pytester.makepyfile(unit_test="".join(
      f"def test_unit_{index}():\n  pass\n\n" for index in range(8)))
  pytester.makeini("[pytest]\nmarkers =\n    e2e: end to end\n")

  result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup",
                                         "-p", "no:cacheprovider")

  result.assert_outcomes(passed=22)
  built_names = sorted(path.name.split("-")[0] for path in built.iterdir())
  assert built_names == ["compiled_run", "sample_runs"], sorted(
      path.name for path in built.iterdir())


@pytest.mark.parametrize("nodeid, unit", [
    ("tests/kubeflow_run_test.py::test_x@e2e:tests/kubeflow_run_test.py",
     "e2e:tests/kubeflow_run_test.py"),
    ("tfx_pipeline/report/html_page_test.py::test_y@e2e:sample_runs",
     "e2e:sample_runs"),
    ("models/item_item/ease_test.py::test_z[a@b]", "models/item_item/ease_test.py"),
    ("models/item_item/ease_test.py::test_w", "models/item_item/ease_test.py"),
])
def test_unit_is_the_marked_group_or_else_the_file(nodeid, unit):
  assert scheduling.FileUnitScheduling._split_scope(None, nodeid) == unit
