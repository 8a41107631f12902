"""Gathers pipeline benchmark runs into one table: seeds, ablations, baselines.

Reads the JSON files `benchmarks.pipeline_benchmark` writes and groups the
runs by dataset, split and configuration: the model family plus every
override but the seed. For each configuration it gives every metric's mean,
standard deviation (over seeds, n - 1) and minimum, beside the classical
baselines of the same dataset and split (EASE^R, item-kNN, most-popular;
deterministic, so any run that trained them gives their values, and runs
that disagree are reported). On Recall@50 and NDCG@10 it names the strongest
baseline and says whether the configuration beats it beyond seed noise:
every seed above it.

    python -m benchmarks.pipeline_summary --runs results/pipeline_a.json ...

Writes `benchmarks/results/pipeline_summary.json` and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys
from typing import Iterable, Mapping

import numpy as np

from benchmarks import common
from offline_eval import reporting

BASELINES = ("ease", "item_knn", "most-popular")
METRICS = ("recall_at_10", "recall_at_50", "recall_at_100", "ndcg_at_10")
VERDICT_METRICS = ("recall_at_50", "ndcg_at_10")
# Overrides that say where a run sits, not what was trained.
_NOT_CONFIGURATION = ("seed=", "examples.split=", "baselines.families=")


def _seed(run: Mapping) -> int:
  for override in run.get("config_overrides", []):
    if override.startswith("seed="):
      return int(override.removeprefix("seed="))
  return 0


def scorers(run: Mapping) -> dict[str, dict[str, float]]:
  """Scorer -> metrics of a run; a run without classical baselines records
  only the model and most-popular, under `metrics`."""
  if run.get("scorers"):
    return run["scorers"]
  return {
      run["model_family"]: {name: row["model"]
                            for name, row in run["metrics"].items()},
      "most-popular": {name: row["most_popular"]
                       for name, row in run["metrics"].items()}}


def configuration(run: Mapping) -> str:
  """The family and every override but the seed, split and baselines."""
  overrides = [f"{key}={value}" for key, value in
               sorted(run.get("hparam_overrides", {}).items())]
  overrides += sorted(override for override in run.get("config_overrides", [])
                      if not override.startswith(_NOT_CONFIGURATION))
  return " ".join([run["model_family"]] + overrides)


def summarize(runs: Iterable[Mapping]) -> dict:
  """Groups `runs` by dataset and split; see the module docstring.

  Args:
    runs: `pipeline_benchmark` results.

  Returns:
    `{"<dataset> <split>": {"baselines": {name: metrics}, "baseline_conflicts":
    [...], "configurations": {configuration: {"seeds": [...], metric:
    {"mean", "std", "min"}, "verdict": {metric: {...}}}}}}`.
  """
  groups = collections.defaultdict(lambda: {
      "baselines": {}, "baseline_conflicts": [], "runs": collections.defaultdict(list)})
  for run in runs:
    group = groups[f"{run['dataset']} {run['split']}"]
    run_scorers = scorers(run)
    for name in BASELINES:
      values = run_scorers.get(name)
      if values is None:
        continue
      known = group["baselines"].setdefault(name, values)
      if any(abs(known[metric] - values[metric]) > 1e-9 for metric in METRICS):
        group["baseline_conflicts"].append(
            f"{name}: {run['command']} gave {values} (kept {known})")
    group["runs"][configuration(run)].append(
        (_seed(run), run_scorers[run["model_family"]]))

  summary = {}
  for key, group in sorted(groups.items()):
    configurations = {}
    for name, seeded in sorted(group["runs"].items()):
      entry = {"seeds": sorted(seed for seed, _ in seeded)}
      for metric in METRICS:
        values = np.array([scores[metric] for _, scores in seeded])
        entry[metric] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else None,
            "min": float(values.min())}
      entry["verdict"] = {
          metric: _verdict(entry[metric], group["baselines"], metric)
          for metric in VERDICT_METRICS}
      configurations[name] = entry
    summary[key] = {"baselines": group["baselines"],
                    "baseline_conflicts": group["baseline_conflicts"],
                    "configurations": configurations}
  return summary


def _verdict(values: Mapping, baselines: Mapping, metric: str) -> dict:
  """The strongest baseline on `metric`, and whether every seed beats it."""
  if not baselines:
    return {"strongest_baseline": None, "beats_every_seed": None}
  strongest = max(baselines, key=lambda name: baselines[name][metric])
  return {"strongest_baseline": strongest,
          "baseline_value": baselines[strongest][metric],
          "beats_every_seed": values["min"] > baselines[strongest][metric]}


def format_table(summary: Mapping) -> str:
  blocks = []
  for key, group in summary.items():
    rows = [[name] + [f"{scores[metric]:.4f}" for metric in METRICS] + ["", ""]
            for name, scores in sorted(group["baselines"].items())]
    for name, entry in group["configurations"].items():
      cells = []
      for metric in METRICS:
        std = entry[metric]["std"]
        cells.append(f"{entry[metric]['mean']:.4f}"
                     + (f" ± {std:.4f}" if std is not None else ""))
      verdicts = [
          "no baseline" if verdict["beats_every_seed"] is None else
          f"{'beats' if verdict['beats_every_seed'] else 'does NOT beat'} "
          f"{verdict['strongest_baseline']}"
          for verdict in entry["verdict"].values()]
      rows.append([f"{name} (seeds {entry['seeds']})"] + cells + verdicts)
    blocks.append(f"{key}\n\n" + reporting.markdown_table(
        ["scorer"] + list(METRICS) + [f"vs strongest on {metric}"
                                      for metric in VERDICT_METRICS], rows))
    blocks += [f"  conflict: {line}" for line in group["baseline_conflicts"]]
  return "\n\n".join(blocks)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--runs", nargs="+", required=True,
                      help="pipeline_benchmark JSON files")
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "pipeline_summary.json"))
  args = parser.parse_args(argv)
  runs = [json.loads(pathlib.Path(path).read_text()) for path in args.runs]
  summary = summarize(runs)
  print(format_table(summary))
  common.write_results(args.output, {
      "command": common.command("benchmarks.pipeline_summary", argv),
      "runs": args.runs, "summary": summary})
  return 0


if __name__ == "__main__":
  sys.exit(main())
