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
so that its peak memory is its own. Meanwhile this process samples the child's
process tree (the step and its Beam workers) with psutil: the peak of their
summed resident memory, and the CPU time they used. A step that passes
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
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
import psutil

from benchmarks import common

MODULE = "benchmarks.scaling"
DATA_STEPS = ("ExampleGen", "StatisticsGen", "Transform")


@dataclasses.dataclass(frozen=True)
class Step:
  """One measured step: the pipeline nodes one child process runs."""
  name: str
  nodes: tuple[str, ...]


# In pipeline order; each step reads what the steps before it wrote. The
# schema import and the validation that Transform waits for take under a
# second together, so they share Transform's process rather than pay for a
# process start of their own; a step's seconds are its main node's.
STEPS = (
    Step("ExampleGen", ("InteractionExampleGen",)),
    Step("StatisticsGen", ("StatisticsGen",)),
    Step("Transform", ("ImportSchemaGen", "ExampleValidator", "AnomaliesGate",
                       "Transform")),
)
_STEPS_BY_NAME = {step.name: step for step in STEPS}


def beam_worker_args(workers: int) -> list[str]:
  """The DirectRunner flags for `workers` worker processes."""
  return [f"--direct_num_workers={workers}",
          "--direct_running_mode=multi_processing"]


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


@dataclasses.dataclass
class ChildRun:
  """What one child process did, as seen from outside.

  Attributes:
    status: `ok`, `failed` (non-zero exit; -9 is usually the kernel's OOM
      killer), `over_memory_budget` or `over_time_budget` (killed by us).
    returncode: the child's exit status.
    wall_s: from start to exit.
    peak_rss_mib: the largest sampled sum of resident memory over the
      child's process tree.
    peak_main_rss_mib: the child's own peak (for a Beam step, the runner).
    peak_worker_rss_mib: the largest peak of any one of its descendants (for
      a Beam step in multi-processing mode, an SDK worker).
    cpu_s: user + system CPU seconds of the whole tree.
    load_average: the 1-minute load average at start and at exit.
    output_tail: the last lines the child printed.
  """
  status: str
  returncode: int
  wall_s: float
  peak_rss_mib: float
  peak_main_rss_mib: float
  peak_worker_rss_mib: float
  cpu_s: float
  load_average: tuple[float, float]
  output_tail: str


def _tree_rss_bytes(process: psutil.Process) -> tuple[int, int, int]:
  """Resident bytes of `process`, of its largest descendant, and of all."""
  sizes = []
  for member in [process, *process.children(recursive=True)]:
    try:
      sizes.append(member.memory_info().rss)
    except psutil.Error:  # Exited between listing and reading.
      sizes.append(0)
  return sizes[0], max(sizes[1:], default=0), sum(sizes)


def run_child(command: Sequence[str], log_path: pathlib.Path,
              max_rss_bytes: float, timeout_s: float,
              sample_every_s: float = 0.5,
              timeline: list[tuple[float, float]] | None = None) -> ChildRun:
  """Runs `command` in its own session, sampling its tree until it exits.

  The child is killed (its whole process group) when its tree's resident
  memory passes `max_rss_bytes` or it runs past `timeout_s`: the machine is
  shared, and an OOM kill could hit someone else's process. CPU time comes
  from `wait4` on this child alone: its own and its waited-for workers'.
  `timeline`, if given, gets every sample as (epoch seconds, tree MiB).
  """
  load_start = os.getloadavg()[0]
  started = time.time()
  peak = peak_main = peak_worker = 0
  status = None
  with open(log_path, "w", encoding="utf-8") as log:
    child = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    watched = psutil.Process(child.pid)
    while True:
      pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
      if pid:
        break
      main, worker, total = _tree_rss_bytes(watched)
      if timeline is not None:
        timeline.append((time.time(), total / 2**20))
      peak, peak_main = max(peak, total), max(peak_main, main)
      peak_worker = max(peak_worker, worker)
      if peak > max_rss_bytes:
        status = "over_memory_budget"
      elif time.time() - started > timeout_s:
        status = "over_time_budget"
      if status:
        os.killpg(child.pid, signal.SIGKILL)
        _, wait_status, usage = os.wait4(child.pid, 0)
        break
      time.sleep(sample_every_s)
  child.returncode = os.waitstatus_to_exitcode(wait_status)
  wall = time.time() - started
  tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
  return ChildRun(
      status=status or ("ok" if child.returncode == 0 else "failed"),
      returncode=child.returncode, wall_s=round(wall, 1),
      peak_rss_mib=round(peak / 2**20, 1),
      peak_main_rss_mib=round(peak_main / 2**20, 1),
      peak_worker_rss_mib=round(peak_worker / 2**20, 1),
      cpu_s=round(usage.ru_utime + usage.ru_stime, 1),
      load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
      output_tail=tail)


def directory_bytes(path: pathlib.Path) -> int:
  """Bytes of every file under `path` (0 if it does not exist)."""
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---------------------------------------------------------------- one step, in the child


def _step_config(dataset_dir: str, workspace: str, workers: int,
                 history_length: int = 0):
  """The pipeline's config for one step; `history_length` 0 keeps its own."""
  from tfx_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      pipeline_name="vrec-scaling", dataset="contract",
      dataset_dir=dataset_dir, workspace=workspace,
      beam_args=beam_worker_args(workers), enable_cache=False)
  if history_length:
    config.examples.history_length = history_length
  return config


def run_step_here(step: Step, dataset_dir: str, workspace: str,
                  workers: int, history_length: int = 0) -> None:
  """Runs `step`'s nodes of the pipeline, in this process (the child)."""
  sys.argv = sys.argv[:1]  # TFX's Beam executors parse sys.argv.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import pipeline as tfx_pipeline_lib  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = _step_config(dataset_dir, workspace, workers, history_length)
  pipeline = pipeline_lib.create_pipeline(
      config,
      metadata_connection_config=pipeline_lib.local_metadata_config(config),
      input_fingerprint=config_lib.fingerprint_directory(dataset_dir))
  nodes = list(step.nodes)
  run_options = tfx_pipeline_lib.RunOptions(from_nodes=nodes, to_nodes=nodes)
  tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)


def _step_seconds(workspace: str, step: Step) -> dict[str, float]:
  """Seconds of each of `step`'s nodes in the newest run, from MLMD."""
  from tfx_pipeline import run_summary  # pylint: disable=g-import-not-at-top
  config = _step_config("unused", workspace, 1)
  summary = run_summary.summarize(config.metadata_path)
  return {run.component: round(run.seconds, 1) for run in summary.components
          if run.component in step.nodes and run.state == "complete"}


# ---------------------------------------------------------------- the benchmark


@dataclasses.dataclass(frozen=True)
class Budget:
  """When a child is killed: its tree's resident memory, its run time, or
  the session's end (`time.time()` of it)."""
  max_rss_bytes: float
  step_timeout_s: float
  session_ends: float = float("inf")

  def timeout_s(self) -> float:
    """The time the next child may take."""
    return min(self.step_timeout_s, self.session_ends - time.time())


def generated_log(data_root: pathlib.Path, size: int, seed: int,
                  time_ordered: bool = False,
                  n_items: int | None = None) -> dict:
  """The log of `size` rows under `data_root`, generated once and reused.

  `time_ordered` writes its rows in time order rather than user by user
  (`data.synthetic.write_log`), in a directory of its own; `n_items` sets
  the catalogue's size apart from the log's (None grows it with the log).

  Returns:
    Its directory, shape, bytes on disk and generation seconds (measured
    when it was generated).
  """
  from data import synthetic  # pylint: disable=g-import-not-at-top
  directory = data_root / (f"log_{size}_seed{seed}"
                           + ("_time_ordered" if time_ordered else "")
                           + (f"_items{n_items}" if n_items else ""))
  record = directory / "generation.json"
  if not record.is_file():
    started = time.time()
    synthetic.write_log(directory, size, seed=seed, time_ordered=time_ordered,
                        n_items=n_items)
    shape = synthetic.LogShape.for_size(size, n_items)
    record.write_text(json.dumps({
        "seconds": round(time.time() - started, 1),
        "users": shape.n_users, "items": shape.n_items,
        "categories": shape.n_categories,
        "bytes": directory_bytes(directory)}))
  return {"dir": str(directory), **json.loads(record.read_text())}


def measure_steps(dataset_dir: str, size: int, workers: int,
                  workspace: pathlib.Path, budget: Budget,
                  history_length: int = 0,
                  last_step: Step = STEPS[-1]) -> list[dict]:
  """Runs the steps up to `last_step` on one log with `workers` Beam
  workers, in order.

  A step that fails or is killed ends the sequence: the later steps need
  its output. `history_length` (0: the pipeline's own) caps the history
  each example carries.
  """
  if workspace.exists():
    shutil.rmtree(workspace)
  workspace.mkdir(parents=True)
  config = _step_config(dataset_dir, str(workspace), workers, history_length)
  records = []
  for step in STEPS[:STEPS.index(last_step) + 1]:
    common.log(f"{size:,} rows, {workers} worker(s): {step.name}")
    child = run_child(
        [sys.executable, "-m", MODULE, "--run-step", step.name,
         "--dataset-dir", dataset_dir, "--workspace", str(workspace),
         "--workers", str(workers), "--history-length", str(history_length)],
        workspace / f"{step.name}.log", budget.max_rss_bytes,
        budget.timeout_s())
    node_seconds = (_step_seconds(str(workspace), step)
                    if child.status == "ok" else {})
    seconds = node_seconds.get(step.nodes[-1])
    records.append({
        "size": size, "workers": workers, "step": step.name,
        "history_length": config.examples.history_length,
        "seconds": seconds, "node_seconds": node_seconds,
        **{key: value for key, value in dataclasses.asdict(child).items()
           if key != "output_tail"},
        "output_bytes": sum(directory_bytes(pathlib.Path(config.pipeline_root,
                                                         node))
                            for node in step.nodes),
        "rows_per_s_per_worker": (round(size / seconds / workers)
                                  if seconds else None),
        "rows_per_cpu_s": (round(size / child.cpu_s)
                           if child.status == "ok" and child.cpu_s else None),
    })
    common.log(f"  {child.status}: {seconds} s in the step, {child.wall_s} s "
               f"wall, peak RSS {child.peak_rss_mib:,.0f} MiB, "
               f"{child.cpu_s} CPU s")
    if child.status != "ok":
      records[-1]["output_tail"] = child.output_tail[-1500:]
      break
  shutil.rmtree(workspace, ignore_errors=True)
  return records


def measure_full_pipeline(dataset_dir: str, size: int,
                          workspace: pathlib.Path, budget: Budget,
                          timeout_s: float,
                          hparams: Sequence[str] = ("epochs=1",),
                          keep_workspace: bool = False) -> dict:
  """The whole pipeline at one size, as `pipeline_benchmark` runs it.

  `hparams` (`name=value`, the model's) bound its training: one epoch by
  default. Besides the run's own record it keeps each component's peak RSS
  of the pipeline's process tree while that component ran. The workspace is
  removed afterwards unless `keep_workspace` (to serve the pushed model).
  """
  if workspace.exists():
    shutil.rmtree(workspace)
  workspace.mkdir(parents=True)
  output = workspace / "pipeline_benchmark.json"
  common.log(f"{size:,} rows: the whole pipeline, {', '.join(hparams)}")
  timeline = []
  child = run_child(
      [sys.executable, "-m", "benchmarks.pipeline_benchmark",
       "--dataset", "contract", "--dataset-dir", dataset_dir,
       "--workspace", str(workspace / "run"), "--output", str(output),
       *[arg for hparam in hparams for arg in ("--hparam", hparam)]],
      workspace / "pipeline.log", budget.max_rss_bytes,
      min(timeout_s, budget.timeout_s()), sample_every_s=1.0,
      timeline=timeline)
  result = {"size": size, "hparams": list(hparams),
            **{key: value for key, value in dataclasses.asdict(child).items()
               if key != "output_tail"},
            "component_peak_rss_mib": _component_peaks(workspace / "run",
                                                        timeline)}
  if child.status == "ok":
    run = json.loads(output.read_text())
    result.update({key: run[key] for key in (
        "model_family", "wall_seconds", "components", "eval_examples",
        "metrics", "blessed", "pushed_dir")})
    result["pushed"] = bool(run["pushed_dir"])
  else:
    result["output_tail"] = child.output_tail[-1500:]
    result["components"] = _finished_components(workspace / "run")
  common.log(f"  {child.status}: {child.wall_s} s wall, peak RSS "
             f"{child.peak_rss_mib:,.0f} MiB, pushed: {result.get('pushed')}")
  if keep_workspace:
    result["workspace"] = str(workspace / "run")
  else:
    shutil.rmtree(workspace, ignore_errors=True)
  return result


def _component_runs(workspace: pathlib.Path) -> list:
  """The components of the run in a workspace, from MLMD; [] if none."""
  from tfx_pipeline import run_summary  # pylint: disable=g-import-not-at-top
  stores = sorted(workspace.glob("metadata/*/metadata.sqlite"))
  if not stores:
    return []
  return run_summary.summarize(str(stores[0])).components


def _finished_components(workspace: pathlib.Path) -> dict[str, float]:
  """Seconds of the components a stopped pipeline run finished, from MLMD."""
  return {run.component: round(run.seconds, 1)
          for run in _component_runs(workspace) if run.state == "complete"}


def _component_peaks(workspace: pathlib.Path,
                     timeline: Sequence[tuple[float, float]]
                     ) -> dict[str, float]:
  """Each component's peak tree RSS (MiB), over the samples in its run."""
  peaks = {}
  for run in _component_runs(workspace):
    inside = [mib for at, mib in timeline
              if run.started <= at <= run.started + run.seconds]
    if inside:
      peaks[run.component] = round(max(inside), 1)
  return peaks


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
  rows = [[f"{run['size']:,}", run["workers"], run["step"], run["status"],
           f"{run['seconds']:.1f}" if run["seconds"] is not None else "-",
           f"{run['wall_s']:.1f}", f"{run['peak_rss_mib']:,.0f}",
           f"{run['cpu_s']:.1f}",
           run["rows_per_s_per_worker"] or "-", run["rows_per_cpu_s"] or "-",
           f"{run['output_bytes'] / 2**20:,.1f}"]
          for run in sorted(results["runs"], key=lambda r: (
              r["size"], r["workers"], STEPS.index(_STEPS_BY_NAME[r["step"]])))]
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


def main(argv=None) -> int:
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
  parser.add_argument("--last-step", choices=[step.name for step in STEPS],
                      default=STEPS[-1].name,
                      help="measure the steps up to this one only; write a "
                      "different --output (default: %(default)s)")
  parser.add_argument("--run-step", choices=sorted(_STEPS_BY_NAME),
                      help=argparse.SUPPRESS)
  parser.add_argument("--dataset-dir", help=argparse.SUPPRESS)
  parser.add_argument("--workspace", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.run_step:
    run_step_here(_STEPS_BY_NAME[args.run_step], args.dataset_dir,
                  args.workspace, *args.workers,
                  history_length=args.history_length)
    return 0

  output = pathlib.Path(args.output)
  results = _load_results(output)
  results["sessions"].append({
      "command": common.command(MODULE, argv), "machine": common.machine(),
      "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
  budget = Budget(args.max_rss_gib * 2**30, args.step_timeout_s,
                  time.time() + args.session_timeout_s)
  data_root = pathlib.Path(args.data_root or tempfile.mkdtemp(
      prefix="vrec_scaling_"))
  done = {(run["size"], run["workers"]) for run in results["runs"]}
  broken = {(run["workers"], run["step"]) for run in results["runs"]
            if run["status"] != "ok"}
  for size in sorted(args.sizes):
    log = generated_log(data_root, size, args.seed, args.time_ordered)
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
      if any((workers, step.name) in broken for step in STEPS):
        common.log(f"{size:,} rows, {workers} worker(s): a step broke at a "
                   "smaller size, skipped")
        continue
      runs = measure_steps(log["dir"], size, workers,
                           data_root / f"workspace_{size}_{workers}", budget,
                           args.history_length,
                           _STEPS_BY_NAME[args.last_step])
      results["runs"].extend(runs)
      broken |= {(run["workers"], run["step"]) for run in runs
                 if run["status"] != "ok"}
      _save(results, output)
    if size == args.full_pipeline_size and str(size) not in results[
        "full_pipeline"]:
      results["full_pipeline"][str(size)] = measure_full_pipeline(
          log["dir"], size, data_root / f"pipeline_{size}", budget,
          args.pipeline_timeout_s)
      _save(results, output)
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
