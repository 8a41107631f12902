"""One process against two local CPU workers of one multi-worker job.

The retrieval Trainer of `--family` trains on the same synthetic clustered
sequences (`models.distribution_testing.clustered_sequences`) once without a
strategy and once as a `MultiWorkerMirroredStrategy` job of two local worker
processes (`TF_CONFIG` on localhost ports), per `--seed` (the Trainer's seed:
initialisation, shuffling, sampling). For each run it records the kept
epoch's validation metrics (Recall@10/50, NDCG@10 on the held-out newest
item of each user) and the training throughput: train rows x epochs over the
learning curve's seconds (from the start of training to the end of the last
epoch's validation, on the chief; process start, catalogue and export
excluded). The table gives each setup's mean and standard deviation over the
seeds, the paired per-seed difference of two workers from one process, and
the two-worker / one-process throughput ratio; the machine's load average is
recorded before and after.

`--one-worker-job` adds a third setup: a `MultiWorkerMirroredStrategy` job of
one worker. It takes the distributed code path (one `model.fit` over every
epoch, input from `distribute_datasets_from_function`, `BackupAndRestore`)
with one replica, so it tells the path's own effect on the metrics from the
second replica's. `--merge` pools the runs of several outputs of the same
settings (seeds run at different times) into one summary.

    python -m benchmarks.distributed_training --seed 0 --seed 1 --seed 2 \\
        --output benchmarks/results/distributed_training.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from typing import Sequence

import numpy as np

from benchmarks import common
from models import distribution
from models import distribution_testing
from models import learning_curve

_METRICS = ("recall_at_10", "recall_at_50", "ndcg_at_10")
ONE_PROCESS = "one process"
TWO_WORKERS = "two workers"
ONE_WORKER_JOB = "one-worker job"
_SETUPS = (ONE_PROCESS, TWO_WORKERS, ONE_WORKER_JOB)
# The settings a merge requires to agree: the runs' data and training.
_MERGED_ARGS = ("family", "users", "clusters", "items_per_cluster", "length",
                "epochs", "num_uniform_negatives")


def _flags(args: argparse.Namespace, model_dir: str, strategy: str,
           seed: int) -> list[str]:
  return ["--family", args.family, "--model-dir", model_dir,
          "--distribution", strategy, "--epochs", str(args.epochs),
          "--users", str(args.users), "--clusters", str(args.clusters),
          "--items-per-cluster", str(args.items_per_cluster),
          "--length", str(args.length), "--seed", str(seed),
          "--num-uniform-negatives", str(args.num_uniform_negatives)]


def _record(model_dir: str, train_rows: int, wall_s: float) -> dict:
  """A run's kept metrics and throughput, from its learning curve."""
  curve = learning_curve.read(os.path.join(model_dir, "model_run"))
  seconds = curve.points[-1].seconds
  return {"metrics": {name: curve.best_point.metrics[name]
                      for name in _METRICS},
          "kept_epoch": curve.best, "epochs": len(curve.points),
          "train_seconds": round(seconds, 2),
          "examples_per_s": round(train_rows * len(curve.points) / seconds, 1),
          "wall_s": round(wall_s, 1)}


def _job(args: argparse.Namespace, workers: int, model_dir: str, seed: int,
         log_dir: str) -> None:
  """Runs a `MultiWorkerMirroredStrategy` job of `workers` local workers."""
  for worker in distribution_testing.start_workers(
      workers, _flags(args, model_dir, distribution.MULTI_WORKER, seed),
      log_dir):
    if worker.wait() != 0:
      raise RuntimeError(f"a worker failed: see {log_dir}")


def run_seed(args: argparse.Namespace, seed: int, root: str) -> dict:
  """One process, then two workers (and a one-worker job where asked), on
  the same data with `seed`."""
  # Each user's newest item is held out for validation.
  train_rows = args.users * (args.length - 1)
  alone = os.path.join(root, f"alone_{seed}")
  started = time.perf_counter()
  subprocess.run([*distribution_testing.worker_command(),
                  *_flags(args, alone, distribution.NONE, seed)],
                 env=distribution_testing.worker_environment(None),
                 check=True, capture_output=True)
  runs = {ONE_PROCESS: _record(alone, train_rows,
                               time.perf_counter() - started)}
  jobs = {TWO_WORKERS: 2, **({ONE_WORKER_JOB: 1} if args.one_worker_job
                             else {})}
  for setup, workers in jobs.items():
    model_dir = os.path.join(root, f"{workers}_workers_{seed}")
    started = time.perf_counter()
    _job(args, workers, model_dir, seed,
         os.path.join(root, f"logs_{workers}_{seed}"))
    runs[setup] = _record(model_dir, train_rows, time.perf_counter() - started)
  common.log(f"seed {seed}: {runs}")
  return runs


def summary(runs: Sequence[dict]) -> dict:
  """Mean and standard deviation over seeds of each setup's numbers, the
  paired per-seed difference of two workers from one process, and the
  throughput ratio of two workers to one process."""
  result = {}
  for setup in _SETUPS:
    if setup not in runs[0]:
      continue
    values = {name: [run[setup]["metrics"][name] for run in runs]
              for name in _METRICS}
    values["examples_per_s"] = [run[setup]["examples_per_s"] for run in runs]
    result[setup] = {name: _mean_std(series)
                     for name, series in values.items()}
  result["two_workers_minus_one_process"] = {
      name: _mean_std([run[TWO_WORKERS]["metrics"][name] -
                       run[ONE_PROCESS]["metrics"][name] for run in runs])
      for name in _METRICS}
  result["seeds"] = len(runs)
  result["examples_per_s_ratio"] = round(
      result[TWO_WORKERS]["examples_per_s"]["mean"] /
      result[ONE_PROCESS]["examples_per_s"]["mean"], 3)
  return result


def _mean_std(series: Sequence[float]) -> dict:
  return {"mean": round(float(np.mean(series)), 4),
          "std": round(float(np.std(series)), 4)}


def table(result: dict) -> str:
  """The summary as aligned text."""
  rows = [[setup] + [
      f"{result[setup][name]['mean']:.4f} +- {result[setup][name]['std']:.4f}"
      for name in _METRICS] + [
          f"{result[setup]['examples_per_s']['mean']:.0f}"]
          for setup in _SETUPS if setup in result]
  difference = result["two_workers_minus_one_process"]
  rows.append(["two workers - one process, paired"] + [
      f"{difference[name]['mean']:+.4f} +- {difference[name]['std']:.4f}"
      for name in _METRICS] + [""])
  return common.aligned_table(["setup", *_METRICS, "examples/s"], rows) + (
      f"\n{result['seeds']} seeds; two workers / one process examples/s: "
      f"{result['examples_per_s_ratio']}")


def merge(paths: Sequence[str]) -> tuple[dict, dict]:
  """The runs of several outputs, by seed, and the settings they share.

  Raises:
    SystemExit: the outputs differ in a setting of `_MERGED_ARGS`, or list
      one seed twice.
  """
  runs, settings = {}, None
  parser = _parser()
  for path in paths:
    with open(path) as source:
      written = json.load(source)
    # An output from before a flag existed ran with the flag's default.
    these = {name: written["args"].get(name, parser.get_default(name))
             for name in _MERGED_ARGS}
    if settings is not None and these != settings:
      raise SystemExit(f"{path}: its settings {these} are not those of "
                       f"{paths[0]} {settings}")
    settings = these
    for seed, run in written["runs"].items():
      if seed in runs:
        raise SystemExit(f"{path}: seed {seed} is in an earlier file too")
      runs[seed] = run
  return runs, settings


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--family", choices=("two_tower", "sasrec"),
                      default="two_tower")
  parser.add_argument("--users", type=int, default=1000)
  parser.add_argument("--clusters", type=int, default=10)
  # 8 of 40: the held-out item is one of the cluster's 33 others, so
  # Recall@10 stays well below 1 and shows differences.
  parser.add_argument("--items-per-cluster", type=int, default=40)
  parser.add_argument("--length", type=int, default=8)
  parser.add_argument("--epochs", type=int, default=4)
  # The two-tower's uniform negatives per step; 0 leaves only the in-batch
  # ones, to tell the two apart in the two-worker comparison.
  parser.add_argument("--num-uniform-negatives", type=int,
                      default=distribution_testing.HPARAMS[
                          "num_uniform_negatives"])
  parser.add_argument("--one-worker-job", action="store_true",
                      help="also run each seed as a job of one worker")
  parser.add_argument("--seed", type=int, action="append")
  parser.add_argument("--merge", nargs="+", metavar="OUTPUT",
                      help="pool these outputs' runs; trains nothing")
  parser.add_argument("--output", required=True)
  return parser


def main(argv: Sequence[str] | None = None) -> dict:
  args = _parser().parse_args(argv)
  command = common.command("benchmarks.distributed_training", argv)
  if args.merge:
    runs, settings = merge(args.merge)
    result = summary(list(runs.values()))
    print(table(result), flush=True)
    common.write_results(args.output, {
        "command": command, "merged": args.merge, "args": settings,
        "runs": runs, "summary": result})
    return result
  seeds = args.seed or [0]
  load_before = common.machine()["load_average"]
  started = time.time()
  with tempfile.TemporaryDirectory() as root:
    runs = [run_seed(args, seed, root) for seed in seeds]
  result = summary(runs)
  print(table(result), flush=True)
  common.write_results(args.output, {
      "command": command, "args": vars(args), "machine": common.machine(),
      "load_average_before": load_before,
      "wall_s": round(time.time() - started, 1),
      "runs": dict(zip(map(str, seeds), runs)), "summary": result})
  return result


if __name__ == "__main__":
  main()
