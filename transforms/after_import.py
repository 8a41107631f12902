"""Runs code right after a module loads, without importing it early.

The packages' `__init__` modules set up TensorFlow (Keras 2, object
storage) for every process, but must not load TensorFlow themselves: the
light commands never need it. `call_after_import` defers each set-up step to
the moment its module is imported, wherever that happens.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from typing import Callable

AfterLoad = Callable[[types.ModuleType], None]


class _AfterImport(importlib.abc.MetaPathFinder):
  """Finds module `name` as usual, then calls each callback once it loaded."""

  def __init__(self, name: str):
    self.name = name
    self.callbacks: list[AfterLoad] = []

  def find_spec(self, fullname, path, target=None):  # pylint: disable=unused-argument
    if fullname != self.name:
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(fullname)
    load = spec.loader.exec_module

    def load_then(module):
      load(module)
      for callback in self.callbacks:
        callback(module)

    spec.loader.exec_module = load_then
    return spec


def call_after_import(name: str, callback: AfterLoad) -> None:
  """Calls `callback(module)` now if `name` is loaded, else once it loads.

  A callback already waiting for `name` is not added twice.

  Args:
    name: the module's full name, e.g. "tensorflow".
    callback: called with the loaded module.
  """
  if name in sys.modules:
    callback(sys.modules[name])
    return
  finder = next((finder for finder in sys.meta_path
                 if isinstance(finder, _AfterImport) and finder.name == name),
                None)
  if finder is None:
    finder = _AfterImport(name)
    sys.meta_path.insert(0, finder)
  if callback not in finder.callbacks:
    finder.callbacks.append(callback)
