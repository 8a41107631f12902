"""What every benchmark shares: the dataset flags, where and how results are
written, the machine they ran on, latency percentiles and console tables."""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import resource
import shlex
import sys
import time
from typing import Callable, Mapping, Sequence

import numpy as np

from data import contract
from data import importers
from offline_eval import datasets
from offline_eval import reporting

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# In a checkout the results sit beside the code (and are committed); an
# installed package is no place to write, so there they go under the working
# directory.
RESULTS_DIR = (_PACKAGE_DIR / "results"
               if (_PACKAGE_DIR.parent / "setup.py").is_file()
               else pathlib.Path.cwd() / "benchmarks" / "results")


def log(message: str) -> None:
  """Prints `message` with the time of day, flushed (runs are long)."""
  print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def add_dataset_arguments(parser: argparse.ArgumentParser,
                          choices: Sequence[str], default,
                          multiple: bool = False) -> None:
  """`--dataset NAME` (`--datasets NAME ...` if `multiple`) and `--dataset-dir`.

  Args:
    parser: the benchmark's parser.
    choices: the built-in dataset names the benchmark knows; `contract`
      (a user's contract directory, `--dataset-dir`) is always added.
    default: the default name, or list of names if `multiple`.
    multiple: whether one run covers several datasets.
  """
  names = (["--datasets", "--dataset"] if multiple else ["--dataset"])
  parser.add_argument(
      *names, dest="datasets" if multiple else "dataset",
      nargs="+" if multiple else None, default=default,
      choices=list(choices) + [datasets.CONTRACT],
      help=f"built-in dataset, or '{datasets.CONTRACT}' for --dataset-dir "
      "(default: %(default)s)")
  parser.add_argument(
      "--dataset-dir", default="",
      help=f"with --dataset {datasets.CONTRACT}: a directory in the input "
      "contract (interactions.csv/.parquet, optional items and users; see "
      "docs/data_contract.md)")


def dataset_label(name: str, args: argparse.Namespace) -> str:
  """A dataset's name in reports and result files: a contract directory is
  named after itself."""
  if name == datasets.CONTRACT:
    return f"{datasets.CONTRACT}-{pathlib.Path(args.dataset_dir).name}"
  return name


def load_sequences(name: str, args: argparse.Namespace,
                   source_root: str | None = None
                   ) -> datasets.SequenceDataset:
  """The leave-one-out sequences of a built-in dataset or `--dataset-dir`."""
  return datasets.load_sequences(name, source_root,
                                 dataset_dir=args.dataset_dir)


def load_interactions(name: str, args: argparse.Namespace,
                      source_root: str | None = None) -> contract.Dataset:
  """A built-in dataset through its importer, or `--dataset-dir` as is."""
  if name == datasets.CONTRACT:
    if not args.dataset_dir:
      raise SystemExit(f"--dataset {datasets.CONTRACT} needs --dataset-dir")
    return contract.load_dataset(args.dataset_dir)
  root = pathlib.Path(source_root or importers.default_source_root())
  return importers.IMPORTERS[name](root)


def command(module: str, argv: Sequence[str] | None) -> str:
  """The command line that reproduces this run, for the results file."""
  arguments = sys.argv[1:] if argv is None else list(argv)
  return shlex.join(["python", "-m", module] + arguments)


def merge_source(source: str) -> tuple[str, list[str] | None]:
  """A `--merge` source, `PATH` or `PATH:ROW,ROW`: the results file and the
  rows to take from it (None: every row)."""
  path, _, rows = source.partition(":")
  return path, rows.split(",") if rows else None


def write_results(path: str | os.PathLike, payload: Mapping) -> pathlib.Path:
  """Writes `payload` as JSON (creating folders) and says where."""
  written = reporting.write_json(path, payload)
  log(f"wrote {written}")
  return written


def run_datasets(module: str, argv: Sequence[str] | None,
                 args: argparse.Namespace,
                 run_dataset: Callable[[str, argparse.Namespace], Mapping],
                 report: Callable[[str, Mapping], str]) -> dict:
  """Runs a benchmark on each of `args.datasets` and writes its results.

  Args:
    module: the benchmark's module, for the command line that reproduces it.
    argv: the command line's arguments (None: `sys.argv`).
    args: the parsed flags; `args.datasets` and `args.output` are read.
    run_dataset: `(dataset name, args) -> that dataset's results`.
    report: `(dataset label, results) -> text`, printed after each dataset.

  Returns:
    The results by dataset label, as written to `args.output` beside the
    command, the flags, the machine and the wall time.
  """
  started = time.time()
  results = {}
  for name in args.datasets:
    label = dataset_label(name, args)
    results[label] = run_dataset(name, args)
    print(report(label, results[label]), flush=True)
  write_results(args.output, {
      "command": command(module, argv),
      "args": {k: str(v) if isinstance(v, pathlib.Path) else v
               for k, v in vars(args).items()},
      "machine": machine(),
      "wall_s": round(time.time() - started, 1), "results": results})
  return results


def machine() -> dict:
  """The machine a result was measured on."""
  return {"cpus": os.cpu_count(), "python": platform.python_version(),
          "numpy": np.__version__,
          "load_average": [round(load, 2) for load in os.getloadavg()]}


def peak_rss_mib() -> float:
  """This process's peak resident memory (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile_ms(latencies_s: Sequence[float], q: float) -> float:
  """The `q`-th percentile of latencies in seconds, in milliseconds."""
  return round(float(np.percentile(np.asarray(latencies_s) * 1e3, q)), 4)


def percentile_difference_ci_ms(latencies_s: Sequence[float],
                                baseline_s: Sequence[float], q: float,
                                level: float = 0.95, resamples: int = 2000,
                                seed: int = 0) -> tuple[float, float]:
  """Bootstrap interval of `q`-th percentile(latencies) - (baseline), in ms.

  Each resample draws both samples again, with replacement and
  independently (percentile bootstrap): how far the difference of two
  measured tail percentiles can move with the requests drawn.
  """
  rng = np.random.default_rng(seed)
  latencies = np.asarray(latencies_s) * 1e3
  baseline = np.asarray(baseline_s) * 1e3
  differences = [
      np.percentile(rng.choice(latencies, len(latencies)), q)
      - np.percentile(rng.choice(baseline, len(baseline)), q)
      for _ in range(resamples)]
  tail = (1.0 - level) / 2 * 100
  low, high = np.percentile(differences, [tail, 100 - tail])
  return round(float(low), 3), round(float(high), 3)


def aligned_table(headers: Sequence[str],
                  rows: Sequence[Sequence[object]]) -> str:
  """A plain-text table for the console: the first column left-aligned,
  the others right-aligned, floats with 4 decimals."""
  def text(cell):
    return f"{cell:.4f}" if isinstance(cell, float) else str(cell)

  cells = [list(headers)] + [[text(cell) for cell in row] for row in rows]
  widths = [max(len(row[column]) for row in cells)
            for column in range(len(headers))]
  return "\n".join(
      "  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths)))
      for row in cells)


def save_log_log_figure(figure, axes_titles: Sequence[tuple[object, str, str]],
                        x_label: str, path: pathlib.Path) -> pathlib.Path:
  """Gives each `(axis, title, y unit)` log-log scales, labels and a grid,
  then writes `figure` to `path` (PNG)."""
  for axis, title, unit in axes_titles:
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel(x_label)
    axis.set_ylabel(unit)
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
  figure.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path, dpi=110)
  log(f"wrote {path}")
  return path
