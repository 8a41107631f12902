"""Beam's pickler without a flush of every logger's cache per call.

Beam's `dill_pickler.dumps` and `loads` end every call with dill's
`_trace(False)`, which sets the `dill` logger's level to WARN even when it is
WARN already. Python's `Logger.setLevel` then clears the level cache of every
logger the process has made (over 1,100 once TFX, Beam and TensorFlow are
loaded), under the logging lock: 130 us per `loads` of a small object,
against 9 us without it. Beam pickles and unpickles each DoFn, coder and side
input of every bundle; on the suite's MovieLens sample pipeline that was
about 1 s of Transform's 20 s and 0.6 s of the Evaluator's 5 (one run each
way, 2026-11-29, beside another job).

`skip_unchanged_levels` makes dill's `_trace` set the level only when it
changes. The levels dill's logger has are the ones it had before; only the
cache flushes that changed nothing are gone.
"""

from __future__ import annotations

import logging
import types

from transforms import after_import

DILL_MODULE = "dill._dill"


def skip_unchanged_levels(dill_module: types.ModuleType) -> None:
  """Replaces `dill_module._trace` by one that leaves an unchanged level alone.

  Args:
    dill_module: dill's implementation module (`dill._dill`).
  """
  original = dill_module._trace  # pylint: disable=protected-access
  if hasattr(original, "__wrapped__"):
    return
  logger = dill_module.log

  def _trace(boolean):
    level = logging.INFO if boolean else logging.WARN
    if logger.level != level:
      original(boolean)

  _trace.__wrapped__ = original
  dill_module._trace = _trace  # pylint: disable=protected-access


def install() -> None:
  """Patches dill's `_trace` now, or when dill is first imported."""
  after_import.call_after_import(DILL_MODULE, skip_unchanged_levels)
