"""How the suite is shared between pytest-xdist workers (`run-tests.sh -n 2`).

A unit of work is one test file, so each module-scoped fixture (a compiled
Kubeflow run, a bucket run, a Beam job service) is built once, by one
worker. Tests that share a session fixture built by a pipeline run
(`sample_runs`) form one unit whichever files they are in, so that run is
paid once too.

The end-to-end units go out first, longest work first, so that two minutes
of pipeline do not start when the other worker has nothing left to do.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

# Session fixtures that run a pipeline: every test using one joins its unit.
SHARED_RUN_FIXTURES = ("sample_runs",)
E2E_MARK = "e2e"
# A unit's name starts with this when it holds end-to-end tests.
_E2E_UNIT_PREFIX = "e2e:"
_GROUP_MARK = "xdist_group"


def unit_of(item: pytest.Item) -> str | None:
  """The work unit `item` must share, or None for its file's unit.

  Args:
    item: a collected test.

  Returns:
    `e2e:<fixture>` for a test on a shared pipeline run, `e2e:<file>` for
    another end-to-end test, None otherwise.
  """
  for fixture in SHARED_RUN_FIXTURES:
    if fixture in getattr(item, "fixturenames", ()):
      return _E2E_UNIT_PREFIX + fixture
  if item.get_closest_marker(E2E_MARK):
    return _E2E_UNIT_PREFIX + item.nodeid.split("::")[0]
  return None


def mark_units(items: list[pytest.Item]) -> None:
  """Marks each test's unit, which `--dist loadgroup` appends to its id."""
  for item in items:
    unit = unit_of(item)
    if unit and not item.get_closest_marker(_GROUP_MARK):
      item.add_marker(pytest.mark.xdist_group(unit))


class FileUnitScheduling(LoadScopeScheduling):
  """xdist's scope scheduling with a file (or a marked group) as the scope."""

  def _split_scope(self, nodeid: str) -> str:
    if nodeid.rfind("@") > nodeid.rfind("]"):
      return nodeid.rsplit("@", 1)[1]
    return nodeid.split("::", 1)[0]

  def _assign_work_unit(self, node) -> None:
    if not getattr(self, "_e2e_first", False):
      # Python's sort is stable: xdist's largest-first order holds within
      # the end-to-end units and within the others.
      units = sorted(self.workqueue.items(),
                     key=lambda unit: not unit[0].startswith(_E2E_UNIT_PREFIX))
      self.workqueue.clear()
      self.workqueue.update(units)
      self._e2e_first = True
    super()._assign_work_unit(node)
