"""Tests for `transforms.beam_pickling`."""

import logging
import subprocess
import sys
import textwrap

from apache_beam.internal import dill_pickler
import dill

import transforms  # noqa: F401  pylint: disable=unused-import
from transforms import beam_pickling


def _cached_level(logger: logging.Logger) -> logging.Logger:
  """Fills `logger`'s level cache, which a `setLevel` anywhere empties."""
  logger.isEnabledFor(logging.INFO)
  assert logger._cache  # pylint: disable=protected-access
  return logger


def test_beams_pickling_leaves_other_loggers_caches_alone():
  other = _cached_level(logging.getLogger("beam_pickling_test.other"))
  assert dill_pickler.loads(dill_pickler.dumps({"a": [1, 2]})) == {"a": [1, 2]}
  assert other._cache  # pylint: disable=protected-access
  assert dill._dill.log.level == logging.WARN  # pylint: disable=protected-access


def test_a_level_that_changes_is_still_set():
  dill_module = dill._dill  # pylint: disable=protected-access
  other = _cached_level(logging.getLogger("beam_pickling_test.changed"))
  try:
    dill_module._trace(True)  # pylint: disable=protected-access
    assert dill_module.log.level == logging.INFO
    # A real change flushes the caches, as `setLevel` must.
    assert not other._cache  # pylint: disable=protected-access
  finally:
    dill_module._trace(False)  # pylint: disable=protected-access
  assert dill_module.log.level == logging.WARN


def test_installed_once_whichever_loads_first():
  script = textwrap.dedent("""
      {first}
      from transforms import beam_pickling
      import dill
      beam_pickling.install()
      beam_pickling.install()
      trace = dill._dill._trace
      print(trace.__module__, trace.__wrapped__.__module__)
      """)
  for first in ("import dill", "import transforms"):
    printed = subprocess.run(
        [sys.executable, "-c", script.format(first=first)], check=True,
        capture_output=True, text=True).stdout.split()
    # Patched, and wrapping dill's own function, not an earlier patch.
    assert printed == ["transforms.beam_pickling", "dill._dill"], first
  assert beam_pickling.DILL_MODULE == dill._dill.__name__  # pylint: disable=protected-access
