"""How the whole pipeline scales with the catalogue, the log's size held.

Each point is a synthetic log (`data.synthetic.write_log`, Zipf-like item
popularity) of a given number of interactions over a given number of items,
run through the whole pipeline by `benchmarks.pipeline_benchmark` in a
child process (default family, both classical baselines, the training
budget of `--hparam`), measured from outside by `benchmarks.scaling`'s
`run_child`: the wall time, the peak RSS of the process tree, and each
component's seconds (from MLMD) and peak RSS (the tree's samples while it
ran):

    python -m benchmarks.catalogue_scaling \\
        --points 1000000x20000 1000000x100000 1000000x1000000 \\
        10000000x1000000 --data-root /tmp/catalogue

The goals (issue 32): every point finishes and pushes, with peak RSS at most
16 GiB on 2 cores / 24 GiB, and 1M interactions x 1M items in at most 60
minutes. `--keep-workspaces` keeps each point's workspace, so that
`benchmarks.serving_latency --model-dir WORKSPACE/serving --dataset contract
--dataset-dir LOG` serves the model trained at that size. A Zipf-like log touches fewer items than its catalogue holds: each
point records both, since the model's catalogue is the items with train
positives. Results are merged into `--output` after every point (a point
already there is not run again); `--plot` draws each component's seconds
and peak RSS against the catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import pandas as pd

from benchmarks import child_process
from benchmarks import common
from benchmarks import pipeline_steps

MODULE = "benchmarks.catalogue_scaling"
GOAL_PEAK_RSS_GIB = 16.0
GOAL_1M_BY_1M_MINUTES = 60.0


def parse_point(text: str) -> tuple[int, int]:
  """`"1000000x20000"` -> (interactions, items).

  Raises:
    ValueError: on anything else.
  """
  interactions, separator, items = text.partition("x")
  if not separator or not interactions.isdigit() or not items.isdigit():
    raise ValueError(f"a point is INTERACTIONSxITEMS, e.g. 1000000x20000; "
                     f"got {text!r}")
  return int(interactions), int(items)


def point_key(interactions: int, items: int) -> str:
  return f"{interactions}x{items}"


def touched_items(log_dir: str) -> int:
  """Distinct items with at least one event in a contract log."""
  path = pathlib.Path(log_dir) / "interactions.parquet"
  return int(pd.read_parquet(path, columns=["item_id"])["item_id"].nunique())


def format_table(results: dict) -> str:
  """One row per point and component, then each point's verdict."""
  rows, verdicts = [], []
  for key, point in sorted(results["points"].items(),
                           key=lambda item: parse_point(item[0])):
    label = (f"{point['interactions']:,} x {point['items']:,} "
             f"({point['touched_items']:,} touched)")
    for component, seconds in point.get("components", {}).items():
      rows.append([label, component, f"{seconds:.1f}",
                   f"{point['component_peak_rss_mib'].get(component, 0):,.0f}"])
    peak_gib = point["peak_rss_mib"] / 1024
    minutes = point["wall_s"] / 60
    goals = [f"peak RSS {peak_gib:.1f} GiB "
             f"({'within' if peak_gib <= GOAL_PEAK_RSS_GIB else 'over'} "
             f"{GOAL_PEAK_RSS_GIB:.0f})"]
    if parse_point(key) == (1_000_000, 1_000_000):
      goals.append(f"{minutes:.1f} min ("
                   f"{'within' if minutes <= GOAL_1M_BY_1M_MINUTES else 'over'}"
                   f" {GOAL_1M_BY_1M_MINUTES:.0f})")
    verdicts.append(f"{label}: {point['status']}, pushed: "
                    f"{point.get('pushed')}, {minutes:.1f} min wall, " +
                    ", ".join(goals))
  return "\n".join([common.aligned_table(
      ["interactions x items", "component", "seconds", "peak RSS MiB"], rows),
                    "", *verdicts])


def plot(results: dict, path: pathlib.Path) -> pathlib.Path:
  """Each component's seconds and peak RSS against the catalogue, one line
  per log size, log-log."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(12, 4.6))
  points = sorted(results["points"].values(),
                  key=lambda point: (point["interactions"], point["items"]))
  components = sorted({name for point in points
                       for name in point.get("components", {})})
  for interactions in sorted({point["interactions"] for point in points}):
    line_points = [point for point in points
                   if point["interactions"] == interactions]
    style = "-o" if interactions == points[0]["interactions"] else "--s"
    for component in components:
      done = [point for point in line_points
              if component in point.get("components", {})]
      if not done:
        continue
      label = f"{component}, {interactions:,} interactions"
      line, = time_axis.plot([p["items"] for p in done],
                             [p["components"][component] for p in done],
                             style, label=label)
      memory_axis.plot([p["items"] for p in done],
                       [p["component_peak_rss_mib"].get(component, 0) / 1024
                        for p in done], style, color=line.get_color())
  memory_axis.axhline(GOAL_PEAK_RSS_GIB, color="red", linestyle=":")
  time_axis.legend(fontsize=6, ncol=2)
  return common.save_log_log_figure(
      figure, ((time_axis, "seconds per component", "seconds"),
               (memory_axis, "peak RSS while it ran", "GiB")),
      "items in the catalogue", path)


def resumed_point(stopped: dict, continued: dict) -> dict:
  """One point from a run that stopped (out of time) and its continuation.

  The continuation (`measure_full_pipeline(resume=True)`) ran only what the
  stopped run had not completed. Components' seconds come from the run that
  completed them, wall time adds up, peak RSS is the larger, and each component's
  peak RSS comes from the run that ran it.
  """
  return {**continued,
          "components": {**stopped["components"], **continued["components"]},
          "wall_s": round(stopped["wall_s"] + continued["wall_s"], 1),
          "peak_rss_mib": max(stopped["peak_rss_mib"],
                              continued["peak_rss_mib"]),
          "component_peak_rss_mib": {**stopped["component_peak_rss_mib"],
                                     **continued["component_peak_rss_mib"]},
          "stopped_run": {key: stopped[key] for key in (
              "status", "wall_s", "peak_rss_mib", "components")}}


def _load(path: pathlib.Path) -> dict:
  if path.is_file():
    return json.loads(path.read_text())
  return {"points": {}, "sessions": []}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--points", nargs="+", type=parse_point,
                      default=[(1_000_000, 20_000), (1_000_000, 100_000),
                               (1_000_000, 1_000_000),
                               (10_000_000, 1_000_000)],
                      help="INTERACTIONSxITEMS per point")
  parser.add_argument("--hparam", action="append", default=[],
                      help="the model's NAME=VALUE training budget, for "
                      "every point (default: its own early stopping)")
  parser.add_argument("--set", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="a pipeline config override for every point, "
                      "e.g. beam_args='[\"--direct_num_workers=2\", "
                      "\"--direct_running_mode=multi_processing\"]'")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data-root", default="",
                      help="where logs and workspaces go (default: a temp "
                      "dir); logs there are reused")
  parser.add_argument("--max-rss-gib", type=float, default=20.0,
                      help="kill a point whose processes pass this much "
                      "resident memory (default: %(default)s)")
  parser.add_argument("--timeout-s", type=float, default=3 * 3600)
  parser.add_argument("--merge", nargs="*", default=[],
                      help="result files of other runs (e.g. points run "
                      "side by side) whose points and sessions join "
                      "--output's before its table and plot")
  parser.add_argument("--resume", action="store_true",
                      help="continue a point of --output that stopped (out "
                      "of time) in its kept workspace, instead of skipping "
                      "it")
  parser.add_argument("--rerun", action="append", default=[], metavar="NODE",
                      help="with --resume: run this node of a kept point "
                      "again, finished or not, with every node downstream "
                      "of it (e.g. a baseline after a change to its fit); "
                      "the point's wall time adds every run's")
  parser.add_argument("--keep-workspaces", action="store_true",
                      help="keep each point's pipeline workspace (its "
                      "pushed model, for benchmarks.serving_latency)")
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "catalogue_scaling.json"))
  parser.add_argument("--plot", default="",
                      help="PNG (default: the output with .png)")
  args = parser.parse_args(argv)

  output = pathlib.Path(args.output)
  results = _load(output)
  for other in map(_load, map(pathlib.Path, args.merge)):
    results["points"].update(other["points"])
    results["sessions"].extend(other["sessions"])
  results["sessions"].append({
      "command": common.command(MODULE, argv), "machine": common.machine(),
      "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
  budget = child_process.Budget(args.max_rss_gib * 2**30, args.timeout_s)
  data_root = pathlib.Path(args.data_root or tempfile.mkdtemp(
      prefix="vrec_catalogue_"))
  for interactions, items in args.points:
    key = point_key(interactions, items)
    stopped = results["points"].get(key)
    resume = bool(args.resume and stopped and stopped.get("workspace")
                  and (stopped["status"] != "ok" or args.rerun))
    if stopped and not resume:
      common.log(f"{key}: in {output}, skipped")
      continue
    log = pipeline_steps.generated_log(data_root, interactions, args.seed,
                                n_items=items)
    run = pipeline_steps.measure_full_pipeline(
        log["dir"], interactions, data_root / f"pipeline_{key}", budget,
        args.timeout_s, hparams=tuple(args.hparam),
        keep_workspace=args.keep_workspaces or resume,
        settings=tuple(args.set), resume=resume,
        rerun=tuple(args.rerun) if resume else ())
    if resume:
      run = resumed_point(stopped, run)
    results["points"][key] = {
        **run, "interactions": interactions, "items": items,
        "touched_items": touched_items(log["dir"]),
        "generation": {k: v for k, v in log.items() if k != "dir"}}
    common.write_results(output, results)
  results["sessions"][-1]["load_average_end"] = [
      round(load, 2) for load in os.getloadavg()]
  common.write_results(output, results)
  print(format_table(results), flush=True)
  plot(results, pathlib.Path(args.plot) if args.plot
       else output.with_suffix(".png"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
