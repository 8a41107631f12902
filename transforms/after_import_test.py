"""Tests for `transforms.after_import`."""

import sys

import pytest

from transforms import after_import


@pytest.fixture
def module_on_path(tmp_path, monkeypatch):
  """The name of a module that exists on sys.path and is not loaded yet."""
  name = f"after_import_probe_{tmp_path.name.replace('-', '_')}"
  (tmp_path / f"{name}.py").write_text("VALUE = 7\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  yield name
  sys.modules.pop(name, None)
  sys.meta_path[:] = [finder for finder in sys.meta_path
                      if getattr(finder, "name", None) != name]


def test_a_loaded_module_gets_the_callback_at_once():
  seen = []
  after_import.call_after_import("json", lambda module: seen.append(module))
  assert seen == [sys.modules["json"]]


def test_each_callback_runs_once_right_after_the_module_loads(module_on_path):
  seen = []

  def first(module):
    seen.append(("first", module.VALUE))

  def second(module):
    seen.append(("second", module.VALUE))

  after_import.call_after_import(module_on_path, first)
  after_import.call_after_import(module_on_path, second)
  after_import.call_after_import(module_on_path, first)
  assert not seen
  __import__(module_on_path)
  assert seen == [("first", 7), ("second", 7)]
  del sys.modules[module_on_path]
  __import__(module_on_path)
  assert len(seen) == 2
