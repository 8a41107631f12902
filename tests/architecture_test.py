"""The package layering, checked from the source so that it cannot regress.

Floors, lowest first: `data` (pure pandas/numpy/IO) -> `transforms` ->
`models` -> `tfx_pipeline` / `serving` / `offline_eval` -> `benchmarks`. A
module may import its own floor or a lower one, never a higher one; the
packages of one floor must not import each other in a loop, nor may any two
modules, directly or through others (imports inside functions count: a
reader and a lazy import see the same loop). Test modules (`*_test.py`,
`tests/`) sit above every floor and are not checked.
"""

from __future__ import annotations

import ast
import itertools
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLOORS = {
    "data": 0,
    "transforms": 1,
    "models": 2,
    "tfx_pipeline": 3,
    "serving": 3,
    "offline_eval": 3,
    "benchmarks": 4,
}
# What the bottom floor may import besides the standard library and itself.
# pyarrow reads Parquet a record batch at a time (`data.contract`), which
# pandas cannot.
DATA_THIRD_PARTY = {"numpy", "pandas", "fsspec", "pyarrow"}


def _imported_modules(path: pathlib.Path,
                      modules: frozenset[str] = frozenset()) -> set[str]:
  """Every absolute module name `path` imports, at any depth of the file.

  `from package import name` counts as `package.name` where that is one of
  `modules`, else as `package`.
  """
  tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      submodules = {f"{node.module}.{alias.name}" for alias in node.names}
      names.update(submodules & modules or {node.module})
  return names


def _product_modules():
  for package in FLOORS:
    for path in sorted((ROOT / package).rglob("*.py")):
      if not path.name.endswith("_test.py"):
        yield package, path


def package_imports() -> dict[tuple[str, str], list[str]]:
  """(importer package, imported package) -> the importing files."""
  edges: dict[tuple[str, str], list[str]] = {}
  for package, path in _product_modules():
    for module in _imported_modules(path):
      top = module.split(".")[0]
      if top in FLOORS and top != package:
        edges.setdefault((package, top), []).append(
            str(path.relative_to(ROOT)))
  return edges


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
  """Product module -> the product modules it imports, at any depth.

  `from package import name` is an import of `package.name` where that is a
  module, else of `package` itself.
  """
  paths = {_module_name(path): path for _, path in _product_modules()}
  graph = {}
  modules = frozenset(paths)
  for name, path in paths.items():
    graph[name] = (_imported_modules(path, modules) & modules) - {name}
  return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected groups of more than one module (Tarjan)."""
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for successor in sorted(graph.get(node, ())):
      if successor not in index:
        visit(successor)
        low[node] = min(low[node], low[successor])
      elif successor in on_stack:
        low[node] = min(low[node], index[successor])
    if low[node] == index[node]:
      group = []
      while not group or group[-1] != node:
        group.append(stack.pop())
        on_stack.discard(group[-1])
      if len(group) > 1:
        cycles.append(sorted(group))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return cycles


def _reaches(edges, start: str, goal: str) -> bool:
  seen, frontier = set(), [start]
  while frontier:
    node = frontier.pop()
    if node == goal:
      return True
    if node not in seen:
      seen.add(node)
      frontier.extend(b for (a, b) in edges if a == node)
  return False


def test_no_import_climbs_a_floor():
  climbing = {edge: files for edge, files in package_imports().items()
              if FLOORS[edge[1]] > FLOORS[edge[0]]}
  assert not climbing, f"imports from a lower floor to a higher one: {climbing}"


def test_no_package_level_loop():
  edges = package_imports()
  loops = [(a, b) for a, b in itertools.permutations(FLOORS, 2)
           if (a, b) in edges and _reaches(edges, b, a)]
  assert not loops, f"package-level import loops: {loops} via {edges}"


def test_no_module_level_import_cycle():
  cycles = import_cycles(module_imports())
  assert not cycles, f"modules that import each other in a loop: {cycles}"


@pytest.mark.parametrize(
    "path", [p for package, p in _product_modules() if package == "data"],
    ids=lambda p: p.name)
def test_data_floor_imports_no_tensorflow_and_no_other_project_package(path):
  allowed = set(sys.stdlib_module_names) | DATA_THIRD_PARTY | {"data"}
  foreign = {m for m in _imported_modules(path) if m.split(".")[0] not in allowed}
  assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_the_checks_see_a_climbing_import(tmp_path, monkeypatch):
  """The checks fail on a planted climb, so a pass above means something."""
  (tmp_path / "data").mkdir()
  (tmp_path / "models").mkdir()
  (tmp_path / "data" / "leak.py").write_text(
      "import tensorflow as tf\nfrom models import two_tower\n")
  (tmp_path / "models" / "two_tower.py").write_text(
      "def lazy():\n  from data import leak\n")
  monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
  assert ("data", "models") in package_imports()
  with pytest.raises(AssertionError, match="lower floor"):
    test_no_import_climbs_a_floor()
  with pytest.raises(AssertionError, match="loops"):
    test_no_package_level_loop()
  with pytest.raises(AssertionError, match="modules that import each other"):
    test_no_module_level_import_cycle()
  with pytest.raises(AssertionError, match="tensorflow"):
    test_data_floor_imports_no_tensorflow_and_no_other_project_package(
        tmp_path / "data" / "leak.py")
