"""How the data steps scale with the size of the interaction log.

Generates realistic synthetic logs (`data.synthetic.write_log`: Zipf item
popularity, heavy-tailed user activity, timestamps, titles and categories)
and runs the pipeline's data steps on each, one step per process, with the
Beam DirectRunner in multi-processing mode on 1 and on 2 workers:

    python -m benchmarks.scaling --sizes 100000 1000000 3000000 10000000 \\
        --workers 1 2 --full-pipeline-size 1000000

Each step is a partial run of the real pipeline (`pipeline.create_pipeline`,
TFX `RunOptions` over that step's nodes, the earlier steps' artifacts taken
from the previous run in the same MLMD store), in a child process of its own,
so that its peak memory is its own (`benchmarks.pipeline_steps`). Meanwhile
this process samples the child's process tree (the step and its Beam workers)
with psutil (`benchmarks.child_process`): the peak of their summed resident
memory, and the CPU time they used. A step that passes
`--max-rss-gib` or `--step-timeout-s` is killed and recorded as such, and
the larger logs skip the steps after it.

For each step and size it records the step's own seconds (from MLMD), the
child's wall time (with interpreter start-up), peak RSS, CPU seconds, rows per
second per worker and per CPU second, and the size of its output artifacts;
then the exponent of time against size per step (a least-squares line through
log time over log size) and the speed-up of 2 workers over 1. With
`--full-pipeline-size` it also runs the whole pipeline at that size with one
training epoch (`benchmarks.pipeline_benchmark`, in a child measured the same
way). Results are merged into `--output` after every measurement (a size and
worker count already there is not run again), and `--plot` draws time and
peak memory against size; `--last-step` stops after the named step, to
measure a variant of the first steps alone. `--history-length 1` shows what
the data steps cost when an example carries one history item instead of up
to 50: about what storing each user's sequence once would leave (same
interactions, one history token each).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Sequence

import numpy as np

from benchmarks import child_process
from benchmarks import common
from benchmarks import pipeline_steps

MODULE = "benchmarks.scaling"
DATA_STEPS = ("ExampleGen", "StatisticsGen", "Transform")


def fit_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
  """The exponent b of `seconds ~ a * sizes**b`, by least squares in log-log.

  Raises:
    ValueError: with fewer than two distinct sizes, or a size or time that
      is not positive.
  """
  sizes, seconds = np.asarray(sizes, float), np.asarray(seconds, float)
  if len(np.unique(sizes)) < 2:
    raise ValueError(f"need two distinct sizes to fit an exponent, got {sizes}")
  if (sizes <= 0).any() or (seconds <= 0).any():
    raise ValueError("sizes and seconds must be positive")
  slope, _ = np.polyfit(np.log(sizes), np.log(seconds), 1)
  return float(slope)


# ---------------------------------------------------------------- measuring a child




def summarize(runs: Sequence[dict]) -> dict:
  """Exponents, speed-ups and memory growth from the step records.

  Returns:
    `exponents`: workers -> step -> fitted exponent of the step's seconds,
      over the sizes where the step finished (at least two);
      `cpu_exponents`: the same for the CPU seconds of its processes, which
      other jobs on a shared machine disturb less; `speedups`: size -> step -> seconds with
      1 worker / seconds with 2; `rss_growth`: workers -> "small->large" ->
      step -> peak RSS ratio between consecutive sizes.
  """
  finished = {(run["workers"], run["step"], run["size"]): run for run in runs
              if run["status"] == "ok" and run["seconds"]}
  exponents, cpu_exponents, speedups, rss_growth = {}, {}, {}, {}
  for workers in sorted({key[0] for key in finished}):
    for step in DATA_STEPS:
      sizes = sorted(size for w, s, size in finished
                     if (w, s) == (workers, step))
      if len(sizes) >= 2:
        for fits, key in ((exponents, "seconds"), (cpu_exponents, "cpu_s")):
          fits.setdefault(str(workers), {})[step] = round(fit_exponent(
              sizes, [finished[workers, step, size][key] for size in sizes]),
                                                          3)
      for small, large in zip(sizes, sizes[1:]):
        rss_growth.setdefault(str(workers), {}).setdefault(
            f"{small}->{large}", {})[step] = round(
                finished[workers, step, large]["peak_rss_mib"] /
                finished[workers, step, small]["peak_rss_mib"], 2)
  for (workers, step, size), run in finished.items():
    other = finished.get((2, step, size))
    if workers == 1 and other:
      speedups.setdefault(str(size), {})[step] = round(
          run["seconds"] / other["seconds"], 2)
  return {"exponents": exponents, "cpu_exponents": cpu_exponents,
          "speedups": speedups, "rss_growth": rss_growth}


def format_table(results: dict) -> str:
  step_order = [step.name for step in pipeline_steps.STEPS]
  rows = [[f"{run['size']:,}", run["workers"], run["step"], run["status"],
           f"{run['seconds']:.1f}" if run["seconds"] is not None else "-",
           f"{run['wall_s']:.1f}", f"{run['peak_rss_mib']:,.0f}",
           f"{run['cpu_s']:.1f}",
           run["rows_per_s_per_worker"] or "-", run["rows_per_cpu_s"] or "-",
           f"{run['output_bytes'] / 2**20:,.1f}"]
          for run in sorted(results["runs"], key=lambda r: (
              r["size"], r["workers"], step_order.index(r["step"])))]
  table = common.aligned_table(
      ["rows", "workers", "step", "status", "step s", "wall s",
       "peak RSS MiB", "CPU s", "rows/s/worker", "rows/CPU s", "output MiB"],
      rows)
  lines = [table, ""]
  for name, fits in (("time", results["exponents"]),
                     ("CPU time", results["cpu_exponents"])):
    for workers, by_step in fits.items():
      lines.append(f"exponent of {name} against size, {workers} worker(s): " +
                   ", ".join(f"{step} {value}"
                             for step, value in by_step.items()))
  for size, by_step in sorted(results["speedups"].items(),
                              key=lambda item: int(item[0])):
    lines.append(f"speed-up of 2 workers over 1 at {int(size):,} rows: " +
                 ", ".join(f"{step} {value}x" for step, value in by_step.items()))
  for full in results["full_pipeline"].values():
    lines.append(f"whole pipeline at {full['size']:,} rows (1 epoch): "
                 f"{full['status']}, {full['wall_s']} s, peak RSS "
                 f"{full['peak_rss_mib']:,.0f} MiB, pushed: {full.get('pushed')}")
  return "\n".join(lines)


def plot(results: dict, path: pathlib.Path) -> pathlib.Path:
  """Step seconds and peak RSS against rows, log-log, one line per step and
  worker count; a step killed or failed at a size is marked with an x."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, (time_axis, memory_axis) = pyplot.subplots(1, 2, figsize=(11, 4.2))
  for workers in sorted({run["workers"] for run in results["runs"]}):
    for step in DATA_STEPS:
      runs = sorted((run for run in results["runs"]
                     if (run["workers"], run["step"]) == (workers, step)),
                    key=lambda run: run["size"])
      done = [run for run in runs if run["status"] == "ok"]
      if not runs:
        continue
      label = f"{step}, {workers} worker{'s' if workers > 1 else ''}"
      style = "-" if workers == 1 else "--"
      line, = time_axis.plot([r["size"] for r in done],
                             [r["seconds"] for r in done], style + "o",
                             label=label)
      memory_axis.plot([r["size"] for r in done],
                       [r["peak_rss_mib"] / 1024 for r in done], style + "o",
                       color=line.get_color(), label=label)
      for run in runs:
        if run["status"] != "ok":
          memory_axis.plot(run["size"], run["peak_rss_mib"] / 1024, "x",
                           color=line.get_color(), markersize=10)
  time_axis.legend(fontsize=7)
  return common.save_log_log_figure(
      figure, ((time_axis, "time in the step", "seconds"),
               (memory_axis, "peak RSS of the step's processes", "GiB")),
      "interactions", path)


def _load_results(path: pathlib.Path) -> dict:
  if path.is_file():
    return json.loads(path.read_text())
  return {"runs": [], "full_pipeline": {}, "generation": {}, "sessions": []}


def merge_results(ours: dict, theirs: dict) -> dict:
  """`ours` with what another run wrote to the same file meanwhile.

  Two sessions (say, the data steps and the whole pipeline, run side by
  side) may share one results file; each keeps the other's measurements.
  Ours win where both measured the same size, worker count and step.
  """
  def run_key(run):
    return run["size"], run["workers"], run["step"]

  runs = {run_key(run): run for run in theirs["runs"]}
  runs.update({run_key(run): run for run in ours["runs"]})
  sessions = {session["started"] + session["command"]: session
              for session in theirs["sessions"] + ours["sessions"]}
  return {**ours, "runs": list(runs.values()),
          "full_pipeline": {**theirs["full_pipeline"], **ours["full_pipeline"]},
          "generation": {**theirs["generation"], **ours["generation"]},
          "sessions": sorted(sessions.values(),
                             key=lambda session: session["started"])}


def _save(results: dict, path: pathlib.Path) -> dict:
  merged = merge_results(results, _load_results(path))
  merged.update(summarize(merged["runs"]))
  common.write_results(path, merged)
  return merged


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", type=int, nargs="+",
                      default=[100_000, 1_000_000, 3_000_000, 10_000_000],
                      help="interactions per log (default: %(default)s)")
  parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                      help="Beam worker counts (default: %(default)s); none "
                      "to run only the whole pipeline")
  parser.add_argument("--full-pipeline-size", type=int, default=0,
                      help="also run the whole pipeline (1 epoch) at this "
                      "size; 0 for none")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--history-length", type=int, default=0,
                      help="history items per example (default: the "
                      "pipeline's); write a different --output, since runs "
                      "are keyed by size and workers only")
  parser.add_argument("--time-ordered", action="store_true",
                      help="logs written in time order instead of user by "
                      "user; write a different --output")
  parser.add_argument("--data-root", default="",
                      help="where logs and workspaces go (default: a temp "
                      "dir); logs there are reused")
  parser.add_argument("--max-rss-gib", type=float, default=12.0,
                      help="kill a step whose processes pass this much "
                      "resident memory (default: %(default)s)")
  parser.add_argument("--step-timeout-s", type=float, default=2700,
                      help="kill a step running longer (default: %(default)s)")
  parser.add_argument("--pipeline-timeout-s", type=float, default=2400)
  parser.add_argument("--session-timeout-s", type=float, default=float("inf"),
                      help="kill the running step when this session has run "
                      "this long, and start no other (default: no limit)")
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "scaling.json"),
                      help="results JSON, merged into if it exists "
                      "(default: %(default)s)")
  parser.add_argument("--plot", default="",
                      help="PNG of time and memory against size "
                      "(default: the output with .png)")
  parser.add_argument("--last-step",
                      choices=[step.name for step in pipeline_steps.STEPS],
                      default=pipeline_steps.STEPS[-1].name,
                      help="measure the steps up to this one only; write a "
                      "different --output (default: %(default)s)")
  parser.add_argument("--run-step",
                      choices=sorted(pipeline_steps.STEPS_BY_NAME),
                      help=argparse.SUPPRESS)
  parser.add_argument("--dataset-dir", help=argparse.SUPPRESS)
  parser.add_argument("--workspace", help=argparse.SUPPRESS)
  return parser


def _measure_sizes(args: argparse.Namespace, results: dict,
                   output: pathlib.Path) -> None:
  """Measures every size and worker count not in `results` yet, saving
  after each; a worker count whose step broke at a smaller size is
  skipped, and so is all once the session's time is up."""
  budget = child_process.Budget(args.max_rss_gib * 2**30, args.step_timeout_s,
                                time.time() + args.session_timeout_s)
  data_root = pathlib.Path(args.data_root or tempfile.mkdtemp(
      prefix="vrec_scaling_"))
  done = {(run["size"], run["workers"]) for run in results["runs"]}
  broken = {(run["workers"], run["step"]) for run in results["runs"]
            if run["status"] != "ok"}
  for size in sorted(args.sizes):
    log = pipeline_steps.generated_log(data_root, size, args.seed,
                                       args.time_ordered)
    results["generation"][str(size)] = {k: v for k, v in log.items()
                                        if k != "dir"}
    for workers in args.workers:
      if (size, workers) in done:
        common.log(f"{size:,} rows, {workers} worker(s): in {output}, skipped")
        continue
      if budget.timeout_s() <= 0:
        common.log(f"{size:,} rows, {workers} worker(s): session over, "
                   "not started")
        continue
      if any((workers, step.name) in broken for step in pipeline_steps.STEPS):
        common.log(f"{size:,} rows, {workers} worker(s): a step broke at a "
                   "smaller size, skipped")
        continue
      runs = pipeline_steps.measure_steps(
          log["dir"], size, workers, data_root / f"workspace_{size}_{workers}",
          budget, args.history_length,
          pipeline_steps.STEPS_BY_NAME[args.last_step])
      results["runs"].extend(runs)
      broken |= {(run["workers"], run["step"]) for run in runs
                 if run["status"] != "ok"}
      _save(results, output)
    if size == args.full_pipeline_size and str(size) not in results[
        "full_pipeline"]:
      results["full_pipeline"][str(size)] = (
          pipeline_steps.measure_full_pipeline(
              log["dir"], size, data_root / f"pipeline_{size}", budget,
              args.pipeline_timeout_s))
      _save(results, output)


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  if args.run_step:
    pipeline_steps.run_step_here(
        pipeline_steps.STEPS_BY_NAME[args.run_step], args.dataset_dir,
        args.workspace, *args.workers, history_length=args.history_length)
    return 0

  output = pathlib.Path(args.output)
  results = _load_results(output)
  results["sessions"].append({
      "command": common.command(MODULE, argv), "machine": common.machine(),
      "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
  _measure_sizes(args, results, output)
  results["sessions"][-1]["ended"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime())
  results["sessions"][-1]["load_average_end"] = [
      round(load, 2) for load in os.getloadavg()]
  results = _save(results, output)
  print(format_table(results), flush=True)
  plot(results, pathlib.Path(args.plot) if args.plot
       else output.with_suffix(".png"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
