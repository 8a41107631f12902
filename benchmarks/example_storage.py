"""The data steps before and after storing train examples once per user.

Compares two `benchmarks.scaling` results JSONs of the same logs and worker
count: `--before`, the code that wrote one example per interaction with a
copy of its history, and `--after`, one train example per user. For each
size and step it prints and writes the output bytes, step seconds, CPU
seconds and peak RSS of both, and after / before for each; and per size the
three data steps' seconds together, against the issue's goals (ExampleGen
writes at least 10x fewer bytes; the three steps take at most 12 minutes at
10M interactions with 2 workers).

    python -m benchmarks.example_storage \\
        --before benchmarks/results/scaling_per_row.json \\
        --after benchmarks/results/scaling_per_user.json

Writes `benchmarks/results/example_storage.json` (`--output`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Sequence

from benchmarks import common

MEASURES = ("output_bytes", "seconds", "cpu_s", "peak_rss_mib")
STEPS = ("ExampleGen", "StatisticsGen", "Transform")
BYTES_GOAL = 10.0  # ExampleGen's bytes, before / after.
DATA_STEPS_GOAL_S = 12 * 60  # The three steps at 10M, 2 workers.
GOAL_SIZE = 10_000_000


def _runs(path: str) -> dict[tuple[int, int, str], dict]:
  with open(path) as results:
    return {(run["size"], run["workers"], run["step"]): run
            for run in json.load(results)["runs"] if run["status"] == "ok"}


def compare(before: dict, after: dict) -> dict:
  """Each (size, workers, step) measured by both, and the steps' totals.

  Args:
    before: `(size, workers, step)` -> a scaling run, per-interaction rows.
    after: the same for per-user train examples.

  Returns:
    `steps`: per step, both runs' `MEASURES` and their ratios (after /
    before); `totals`: per size and workers, both runs' seconds over the
    three steps, the ratio, and for 10M whether the time goal is met;
    `example_gen_bytes_goal_met`: per size, whether ExampleGen wrote at
    least `BYTES_GOAL` times fewer bytes.
  """
  steps, totals, bytes_goal = [], [], {}
  for key in sorted(set(before) & set(after)):
    size, workers, step = key
    row = {"size": size, "workers": workers, "step": step}
    for measure in MEASURES:
      row[f"{measure}_before"] = before[key][measure]
      row[f"{measure}_after"] = after[key][measure]
      row[f"{measure}_ratio"] = round(after[key][measure]
                                      / before[key][measure], 4)
    steps.append(row)
    if step == "ExampleGen":
      bytes_goal[str(size)] = (before[key]["output_bytes"]
                               >= BYTES_GOAL * after[key]["output_bytes"])
  for size, workers in sorted({key[:2] for key in before}):
    if all((size, workers, step) in before and (size, workers, step) in after
           for step in STEPS):
      seconds = {name: round(sum(runs[(size, workers, step)]["seconds"]
                                 for step in STEPS), 1)
                 for name, runs in (("before", before), ("after", after))}
      total = {"size": size, "workers": workers,
               "seconds_before": seconds["before"],
               "seconds_after": seconds["after"],
               "ratio": round(seconds["after"] / seconds["before"], 4)}
      if size == GOAL_SIZE and workers == 2:
        total["time_goal_met"] = seconds["after"] <= DATA_STEPS_GOAL_S
      totals.append(total)
  return {"steps": steps, "totals": totals,
          "example_gen_bytes_goal_met": bytes_goal}


def report(comparison: dict) -> str:
  step_table = common.aligned_table(
      ["size", "step", "MB before", "MB after", "bytes after/before",
       "s before", "s after", "s after/before", "peak MiB before",
       "peak MiB after"],
      [[f"{row['size']:,}", row["step"],
        round(row["output_bytes_before"] / 1e6, 1),
        round(row["output_bytes_after"] / 1e6, 1),
        row["output_bytes_ratio"], row["seconds_before"],
        row["seconds_after"], row["seconds_ratio"],
        row["peak_rss_mib_before"], row["peak_rss_mib_after"]]
       for row in comparison["steps"]])
  total_table = common.aligned_table(
      ["size", "workers", "3 steps s before", "after", "after/before",
       "goal <= 720 s at 10M"],
      [[f"{row['size']:,}", row["workers"], row["seconds_before"],
        row["seconds_after"], row["ratio"], row.get("time_goal_met", "-")]
       for row in comparison["totals"]])
  return (f"{step_table}\n\n{total_table}\n\nExampleGen >= {BYTES_GOAL:g}x "
          f"fewer bytes: {comparison['example_gen_bytes_goal_met']}")


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--before", required=True)
  parser.add_argument("--after", required=True)
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "example_storage.json"))
  args = parser.parse_args(argv)
  comparison = compare(_runs(args.before), _runs(args.after))
  comparison["inputs"] = {"before": args.before, "after": args.after}
  pathlib.Path(args.output).write_text(json.dumps(comparison, indent=2))
  print(report(comparison))


if __name__ == "__main__":
  main()
