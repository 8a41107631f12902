"""GUIM's K sweep: merges per-seed embedding-benchmark runs and judges K.

`benchmarks.embedding_benchmark` runs all its seeds in one process; on a
shared machine the seeds of the Taobao sweep were run as one process each
(`--seeds 0`, `--seeds 1`, ...). This merges those files into one result,
mean ± std over the seeds, and states the issue's goal for every K > 1:

- whether GUIM at that K beats GUIM at K = 1 on at least `MIN_TASKS_WON`
  tasks in every seed (a task is won when the K row's value is higher);
- whether it beats K = 1 on next-item Recall@50 of the most diverse users
  (`.../diversity_q4`), in every seed;

and names the strongest baseline of each task (two-tower, SASRec-class,
item-kNN, most-popular: every row that is not GUIM or random).

    python -m benchmarks.guim_sweep RUN_SEED0.json RUN_SEED1.json ... \\
        --output benchmarks/results/embedding_benchmark_taobao_k_sweep.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Mapping, Sequence

import numpy as np

from benchmarks import common
from offline_eval import reporting

K1_ROW = "guim_k1"
GUIM_PREFIX = "guim_k"
RANDOM_ROW = "random"
MIN_TASKS_WON = 3
MOST_DIVERSE = "next_item_recall@50/diversity_q4"


def merge(payloads: Sequence[Mapping]) -> dict:
  """One dataset's per-seed runs as one result, seeds in the given order.

  Args:
    payloads: `benchmarks.embedding_benchmark` output files, one dataset
      each, in seed order; a seed's rows may be split over consecutive files
      (each row once per seed; the classical rows may be in one file only:
      they are deterministic).

  Returns:
    `metrics[row][metric]` aggregated over the seeds that ran the row, and
    the runs' seeds, learning curves, train seconds, sizes, commands and
    machine loads.
  """
  results = [payload["results"][0] for payload in payloads]
  per_seed: dict[str, list[dict[str, float]]] = {}
  curves: dict[str, list] = {}
  seconds: dict[str, list] = {}
  for result in results:
    for row, stats in result["metrics"].items():
      for index in range(len(next(iter(stats.values()))["values"])):
        per_seed.setdefault(row, []).append(
            {name: values["values"][index] for name, values in stats.items()})
    for row, row_curves in result.get("learning_curves", {}).items():
      curves.setdefault(row, []).extend(row_curves)
    for row, row_seconds in result["train_and_embed_seconds"].items():
      seconds.setdefault(row, []).extend(row_seconds)
  return {
      "dataset": results[0]["dataset"],
      "tasks": results[0]["tasks"],
      # A seed's rows may come from several files, given one after another.
      "seeds": list(dict.fromkeys(
          seed for result in results for seed in result["seeds"])),
      "per_seed": per_seed,
      "metrics": {row: reporting.aggregate_seeds(runs)
                  for row, runs in per_seed.items()},
      "learning_curves": curves,
      "seconds_to_99pct_of_best": {
          row: float(np.mean([curve["seconds_to_99pct_of_best"]
                              for curve in row_curves]))
          for row, row_curves in curves.items()},
      "train_and_embed_seconds": seconds,
      "sizes": results[0]["sizes"],
      "commands": [payload["command"] for payload in payloads],
      "machines": [payload["machine"] for payload in payloads],
      "wall_seconds": [payload["wall_seconds"] for payload in payloads],
  }


def task_metrics(tasks: Sequence[Mapping]) -> list[str]:
  """The one metric of each single-metric task, in task order."""
  return [task["name"] for task in tasks if task["kind"] != "sampled_ranking"]


def k_verdict(per_seed: Mapping[str, Sequence[Mapping[str, float]]],
              metrics: Sequence[str]) -> dict[str, dict]:
  """Against K = 1, per GUIM row: tasks won per seed, and the goal's tests.

  Returns:
    Row -> `tasks_won_per_seed` (the metrics its value beats K = 1's on,
    per seed), `beats_k1_on_3_tasks_every_seed`, `most_diverse_won_per_seed`
    and `beats_k1_on_most_diverse_every_seed`.
  """
  baseline = per_seed[K1_ROW]
  verdict = {}
  for row, runs in per_seed.items():
    if not row.startswith(GUIM_PREFIX) or row == K1_ROW or "_concat" in row:
      continue
    won = [[name for name in metrics if run[name] > reference[name]]
           for run, reference in zip(runs, baseline)]
    diverse = [run[MOST_DIVERSE] > reference[MOST_DIVERSE]
               for run, reference in zip(runs, baseline)]
    verdict[row] = {
        "tasks_won_per_seed": won,
        "beats_k1_on_3_tasks_every_seed": all(
            len(names) >= MIN_TASKS_WON for names in won),
        "most_diverse_won_per_seed": diverse,
        "beats_k1_on_most_diverse_every_seed": all(diverse),
    }
  return verdict


def strongest_baselines(metrics: Mapping[str, Mapping[str, dict]],
                        names: Sequence[str]) -> dict[str, str]:
  """Metric -> the non-GUIM, non-random row with the best mean."""
  baselines = [row for row in metrics
               if not row.startswith(GUIM_PREFIX) and row != RANDOM_ROW]
  return {name: max((row for row in baselines if name in metrics[row]),
                    key=lambda row: metrics[row][name]["mean"])
          for name in names}


def markdown(result: Mapping) -> str:
  """Rows × (tasks, diversity quartiles, time to quality), mean ± std."""
  names = task_metrics(result["tasks"]) + [
      f"next_item_recall@50/diversity_q{quartile}" for quartile in (1, 4)]
  metrics = result["metrics"]
  rows = [[row] + [reporting.format_mean_std(stats[name]) if name in stats
                   else "–" for name in names] +
          [f"{result['seconds_to_99pct_of_best'][row]:.0f}"
           if row in result["seconds_to_99pct_of_best"] else "–"]
          for row, stats in metrics.items()]
  return reporting.markdown_table(
      ["model", *names, "s to 99% of best valid"], rows)


def main(argv: Sequence[str]) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("runs", nargs="+", help="per-seed result files")
  parser.add_argument("--output", required=True)
  args = parser.parse_args(argv)
  payloads = []
  for path in args.runs:
    with open(path) as run:
      payloads.append(json.load(run))
  result = merge(payloads)
  names = task_metrics(result["tasks"])
  result["k_verdict"] = k_verdict(result["per_seed"], names)
  result["strongest_baseline"] = strongest_baselines(
      result["metrics"], names + [MOST_DIVERSE])
  print(markdown(result))
  print(json.dumps({"k_verdict": result["k_verdict"],
                    "strongest_baseline": result["strongest_baseline"]},
                   indent=1))
  common.write_results(args.output, {
      "command": common.command("benchmarks.guim_sweep", argv), **result})


if __name__ == "__main__":
  main(sys.argv[1:])
