"""Every results JSON the documentation cites exists and parses.

README.md, docs/*.md, benchmarks/README.md and benchmarks/HISTORY.md quote
numbers from `benchmarks/results/*.json`. A citation is any `*.json` name in
their text: `benchmarks/results/x.json`, `results/x.json` or a bare `x.json`.
Shorthands stand for every file they match, and must match at least one:
`<dataset>` and `[_seed<n>]` for any text, `{a,b}` for each of its choices,
`...`/`…` or a leading `_` for any prefix, `*` as in a glob. Paths in other
folders (`/tmp/...`, `/work/...`, a workspace) are where a command wrote its
output, and the names in `NOT_RESULTS` are files the pipeline, the index
builder or KFP writes into a run, not results; neither is a citation.

Only the standard library: no TensorFlow, so this runs in a second.
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# What the pipeline, the index builder or KFP writes into a run; the docs
# name them to say where to look, not to cite a result.
NOT_RESULTS = frozenset({
    "comparison.json", "example_gen_summary.json", "fit_failure.json",
    "index_config.json", "item_images.json", "learning_curve.json",
    "model_info.json", "pipeline.json", "pipeline_benchmark.json",
    "points.json", "report.json",
    "vrec_pipeline.json", "vrec_pipeline_spec.json",
})

_TOKEN = re.compile(r"[A-Za-z0-9_.\-/<>{}\[\]*,…]*\.json\b")
_RESULTS_DIR = re.compile(r"^(?:\.\./)?(?:benchmarks/)?results/")


def documents() -> list[pathlib.Path]:
  paths = [ROOT / "README.md", ROOT / "benchmarks" / "README.md",
           ROOT / "benchmarks" / "HISTORY.md"]
  paths += sorted((ROOT / "docs").glob("*.md"))
  return [path for path in paths if path.exists()]


def citations(text: str) -> list[str]:
  """The results files `text` cites, as glob patterns over their names."""
  patterns = []
  for token in _TOKEN.findall(text):
    token = token.strip(".,")
    if not token.endswith(".json"):
      token += "json" if token.endswith(".") else ".json"
    if token.startswith(("...", "…")):
      token = "*" + token.lstrip(".…/")
    elif "/" in token:
      if not _RESULTS_DIR.match(token):
        continue  # a command's output or a workspace file, not a result
      token = _RESULTS_DIR.sub("", token)
      if "/" in token:
        continue
    if token in NOT_RESULTS or token == ".json":
      continue
    if token.startswith("_"):
      token = "*" + token
    token = re.sub(r"<[^<>]*>|\[[^\[\]]*\]", "*", token)
    token = re.sub(r"\[[^\[\]]*\]", "*", token)  # nested `[_seed<n>]`
    patterns.extend(_expand_braces(token))
  return patterns


def _expand_braces(pattern: str) -> list[str]:
  match = re.search(r"\{([^{}]*)\}", pattern)
  if not match:
    return [pattern]
  head, tail = pattern[:match.start()], pattern[match.end():]
  return [expanded for choice in match.group(1).split(",")
          for expanded in _expand_braces(head + choice + tail)]


def problems(text: str, results: pathlib.Path = RESULTS) -> list[str]:
  """Every cited pattern that names no file, or a file that is not JSON."""
  names = sorted(path.name for path in results.glob("*.json"))
  found = []
  for pattern in sorted(set(citations(text))):
    matched = fnmatch.filter(names, pattern)
    if not matched:
      found.append(f"{pattern}: no such file in {results}")
    for name in matched:
      try:
        json.loads((results / name).read_text(encoding="utf-8"))
      except (ValueError, UnicodeDecodeError) as error:
        found.append(f"{name}: not JSON ({error})")
  return found


@pytest.mark.parametrize("document", documents(),
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_every_cited_results_json_exists_and_parses(document):
  broken = problems(document.read_text(encoding="utf-8"))
  assert not broken, (f"{document.relative_to(ROOT)} cites results that "
                      f"are missing or broken: {broken}")


def test_the_benchmark_reference_cites_its_results():
  """The pattern finds the citations, so a pass above means something."""
  text = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
  assert len(set(citations(text))) >= 40


def test_the_check_sees_a_broken_citation(tmp_path):
  (tmp_path / "good_seed0.json").write_text('{"recall_at_50": 0.4}')
  (tmp_path / "good_seed1.json").write_text("[]")
  (tmp_path / "broken.json").write_text('{"recall_at_50": ')
  assert citations(
      "`benchmarks/results/a.json`, results/b.json, `c.json`, "
      "`good_seed{0,1}.json`, `good_seed<n>.json`, ..._seed1.json, "
      "`_seed0.json`, /tmp/ws/d.json, <ModelRun>/learning_curve.json, "
      "`learning_curve.json`") == [
          "a.json", "b.json", "c.json", "good_seed0.json", "good_seed1.json",
          "good_seed*.json", "*_seed1.json", "*_seed0.json"]
  assert problems("`good_seed{0,1}.json`, good_seed<n>.json, /tmp/x.json",
                  tmp_path) == []
  assert problems("see `missing.json`", tmp_path) == [
      f"missing.json: no such file in {tmp_path}"]
  assert [p.split(":")[0] for p in problems("`broken.json`", tmp_path)] == [
      "broken.json"]
