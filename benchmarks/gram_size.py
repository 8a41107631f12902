"""The item-item baselines' co-occurrence matrix against their memory budget.

For each contract log, the size of G = XᵀX over all its events (a superset
of any train split), counted as the fits now count it before building it
(`models.item_item.gram`), what EASE^R's approximate 6-λ path and item-kNN
would hold at their peak, and their default budget now. With `--fit` each
baseline's fit is run and either fits or refuses; its seconds and the
process's peak RSS are recorded. The baseline of the comparison is the fit
before the count: at 10M x 1M it built G and passed 19 GiB
(`catalogue_scaling_10m.json`).

    python -m benchmarks.gram_size --logs /work/catalogue/log_1000000_seed0_items1000000 \\
        /work/catalogue/log_10000000_seed0_items1000000 --fit

`--ease-threads 1 2` fits EASE^R's path once per thread count instead
(`EaseConfig.solve_threads`) and states each one's seconds over the first's.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time

import numpy as np
import pandas as pd
from scipy import sparse

from benchmarks import common
from models.item_item import ease
from models.item_item import gram
from models.item_item import item_knn

MODULE = "benchmarks.gram_size"


def interactions_of(log_dir: pathlib.Path) -> sparse.csr_matrix:
  """Binary `[users, items]` X of every event in a contract log."""
  frame = pd.read_parquet(log_dir / "interactions.parquet",
                          columns=["user_id", "item_id"])
  users = pd.factorize(frame["user_id"])[0]
  items = pd.factorize(frame["item_id"])[0]
  matrix = sparse.csr_matrix((np.ones(len(users), np.float32),
                              (users, items)))
  matrix.data[:] = 1.0
  return matrix


def _fit_outcome(fit) -> dict:
  started = time.perf_counter()
  try:
    fit()
    outcome = {"fitted": True, "reason": ""}
  except ValueError as error:
    outcome = {"fitted": False, "reason": str(error)}
  return {**outcome, "seconds": round(time.perf_counter() - started, 1),
          "process_peak_rss_mib": round(common.peak_rss_mib(), 1)}


def measure(log_dir: pathlib.Path, fit: bool,
            ease_threads: list[int] | None = None) -> dict:
  """G's size and each baseline's need against its budget for one log;
  with `ease_threads`, EASE^R's fit at each of those thread counts."""
  interactions = interactions_of(log_dir)
  started = time.perf_counter()
  per_item = gram.nonzeros_per_item(interactions)
  count_seconds = time.perf_counter() - started
  config = ease.EaseConfig()
  record = {
      "log": log_dir.name, "users": interactions.shape[0],
      "items": interactions.shape[1], "events": int(interactions.nnz),
      "gram_nonzeros": int(per_item.sum()),
      "count_seconds": round(count_seconds, 1),
      "ease_approx_path_gb": round(ease.approx_memory_bytes(
          int(per_item.sum()), interactions.shape[1],
          ease.support_entries(per_item, config.support),
          config.neighbours, len(config.l2_grid),
          ease.solve_threads(config)) / 1e9, 2),
      "item_knn_gb": round(item_knn.memory_bytes(
          interactions.shape[1], max(item_knn.ItemKnnConfig().neighbours_grid),
          gram.block_entries(interactions)) / 1e9, 2),
      "default_budget_gb": round(gram.memory_budget_bytes(None) / 1e9, 2)}

  def ease_path(ease_config: ease.EaseConfig) -> dict:
    return _fit_outcome(lambda: next(ease.fit_ease_path(
        interactions, ease_config, list(ease_config.l2_grid))))

  if fit:
    record["ease"] = ease_path(config)
    record["item_knn"] = _fit_outcome(lambda: item_knn.fit_item_knn(
        interactions, item_knn.ItemKnnConfig(neighbours=50, shrinkage=10.0)))
  for threads in ease_threads or ():
    record.setdefault("ease_by_threads", {})[str(threads)] = ease_path(
        dataclasses.replace(config, solve_threads=threads))
  return record


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--logs", nargs="+", required=True,
                      help="contract log directories")
  parser.add_argument("--fit", action="store_true",
                      help="also run each baseline's fit (EASE^R's first λ "
                      "of its path, item-kNN at 50 neighbours)")
  parser.add_argument("--ease-threads", nargs="+", type=int,
                      help="fit EASE^R's path once per thread count "
                      "(solve_threads); the first is the ratios' baseline")
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "gram_size.json"))
  args = parser.parse_args(argv)
  records = [measure(pathlib.Path(log), args.fit, args.ease_threads)
             for log in args.logs]
  rows = [[r["log"], f"{r['events']:,}", f"{r['items']:,}",
           f"{r['gram_nonzeros']:,}", f"{r['ease_approx_path_gb']:.1f}",
           f"{r['item_knn_gb']:.1f}", f"{r['default_budget_gb']:.1f}",
           " / ".join(("fits" if r[name]["fitted"] else "refused")
                      + f" {r[name]['seconds']:.0f} s"
                      for name in ("ease", "item_knn")) if args.fit else ""]
          for r in records]
  print(common.aligned_table(
      ["log", "events", "items", "G non-zeros", "EASE^R GB", "item-kNN GB",
       "budget GB", "EASE^R / item-kNN fit"], rows))
  print("Baseline: the fit before the count built G first; at 10M x 1M it "
        "passed 19 GiB and was killed (catalogue_scaling_10m.json).")
  for record in records:
    by_threads = record.get("ease_by_threads", {})
    if by_threads:
      first = next(iter(by_threads.values()))["seconds"]
      print(common.aligned_table(
          ["log", "EASE^R threads", "path s", "peak RSS MiB", "s / first"],
          [[record["log"], threads, f"{outcome['seconds']:.1f}",
            f"{outcome['process_peak_rss_mib']:.0f}",
            f"{outcome['seconds'] / first:.2f}" if first else "-"]
           for threads, outcome in by_threads.items()]))
      print("Ratio: each thread count's path seconds over the first "
            "count's, same process and log.")
  common.write_results(args.output, {
      "command": common.command(MODULE, argv), "machine": common.machine(),
      "logs": records, "process_peak_rss_mib": round(common.peak_rss_mib(), 1)})
  return 0


if __name__ == "__main__":
  sys.exit(main())
