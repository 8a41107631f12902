"""Benchmarks ScaNN against exact brute-force top-k, single-threaded.

Two suites, each measured in one run against its own exact baseline (numpy
matmul + argpartition) on the same queries:

- real: a trained model's pushed version directory (`--model_dir`). The
  database is the item embeddings stored in its ScaNN index (cross-checked
  against the `candidate_embedding` signature when the dataset has an items
  table); the queries are `query_embedding` outputs for real users of the
  dataset (their last 50 items before their last interaction as history), or,
  without a dataset, noisy item embeddings (`benchmarks.model_queries`). The
  dataset is the contract directory the pipeline wrote into the model's
  workspace, or `--dataset` (a built-in name, or `contract` with
  `--dataset-dir`).
- synthetic: `--num_vectors` clustered, unit-normalized float32 vectors
  (default 1,000,000 x 64) and `--num_queries` queries from the same
  distribution.

Everything runs on one core (`--cpu`, pinned with sched_setaffinity, BLAS
limited to one thread, ScaNN trained with one thread). Queries are split into
rounds; in each round every method (brute force and every ScaNN setting, in a
fresh random order) answers a few queries untimed, then the round's queries
one per call (batch of 1, the latency-relevant number), then in one batched
call, each pass repeated until it took `--min_seconds`, so background load
hits all methods alike (`benchmarks.ann_measure`). Wall-clock and process-CPU
QPS are both recorded.

How hard the synthetic data is depends on `--spread` (noise norm relative to
the unit cluster centers): at 1.0 the clusters are well separated and few
leaves give high recall; at 2.0 the vectors are close to uniform on the
sphere, the hardest case for any partitioning index.

    python -m benchmarks.ann \\
        --model_dir /tmp/vrec_bench_x/serving/retrieval/1795386972

Writes `benchmarks/results/ann.json` and prints a table.
"""

from __future__ import annotations

import os

# Single-threaded BLAS: must be set before numpy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
  os.environ[_variable] = "1"

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import dataclasses
import gc
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np

from benchmarks import ann_measure
from benchmarks import common
from benchmarks import model_queries
from data import importers
# pylint: enable=g-import-not-at-top,wrong-import-position

# The fresh process that measures loading runs here, so that it imports the
# same `serving` package as this one.
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
GOAL_RECALL = 0.95
GOAL_SPEEDUP = 10.0


# ----------------------------------------------------------------- utils ---


def _rss_bytes() -> int:
  with open("/proc/self/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  return 0


def _dir_bytes(directory: str) -> int:
  total = 0
  for root, _, names in os.walk(directory):
    for name in names:
      total += os.path.getsize(os.path.join(root, name))
  return total


def _mib(num_bytes: float) -> float:
  return round(num_bytes / 2**20, 1)


# ----------------------------------------------------------------- scann ---


def build_searcher(database: np.ndarray, num_leaves: int, leaves_to_search: int,
                   reorder: int):
  """Builds as `ScannIndex.build` does, without its sqrt(n) cap on leaves."""
  import scann  # pylint: disable=g-import-not-at-top
  from serving import scann_index  # pylint: disable=g-import-not-at-top
  params = scann_index.ScannParams()
  builder = scann.scann_ops_pybind.builder(database, ann_measure.K,
                                           "dot_product")
  builder.set_n_training_threads(1)
  return (builder.tree(
      num_leaves=num_leaves, num_leaves_to_search=leaves_to_search,
      training_sample_size=min(params.training_sample_size, len(database)))
          .score_ah(params.dimensions_per_block,
                    anisotropic_quantization_threshold=(
                        params.anisotropic_quantization_threshold))
          .reorder(reorder).build())


def built_index(database: np.ndarray, num_leaves: int, leaves_to_search: int,
                reorder: int, scratch: str):
  """Builds, serializes and reloads one searcher, measuring each step.

  Returns:
    `(loaded searcher, info)`, info holding build seconds, bytes on disk
    and resident-memory deltas of building and of loading.
  """
  import scann  # pylint: disable=g-import-not-at-top
  gc.collect()
  rss_before = _rss_bytes()
  started = time.perf_counter()
  searcher = build_searcher(database, num_leaves, leaves_to_search, reorder)
  build_s = time.perf_counter() - started
  rss_built = _rss_bytes()
  directory = os.path.join(scratch, f"leaves{num_leaves}")
  os.makedirs(directory)
  searcher.serialize(directory)
  del searcher
  gc.collect()
  return scann.scann_ops_pybind.load_searcher(directory), {
      "num_leaves": num_leaves, "build_s": round(build_s, 2),
      "disk_mib": _mib(_dir_bytes(directory)),
      "build_rss_delta_mib": _mib(rss_built - rss_before),
      "load_rss_delta_mib": load_rss_delta_mib("searcher", directory),
  }


_LOAD_RSS_SCRIPT = """
import gc, json, sys
def rss():
  with open("/proc/self/status") as f:
    return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
import scann
from serving import scann_index
gc.collect()
before = rss()
if sys.argv[1] == "model":
  loaded = scann_index.ScannIndex.load(sys.argv[2])
else:
  loaded = scann.scann_ops_pybind.load_searcher(sys.argv[2])
print(json.dumps({"delta": rss() - before}))
"""


def load_rss_delta_mib(kind: str, path: str) -> float:
  """Resident growth of loading an index, in a fresh process.

  Args:
    kind: "model" for a model version dir (`ScannIndex.load`, as the server
      does), "searcher" for a serialized searcher dir.
    path: the directory.
  """
  output = subprocess.run([sys.executable, "-c", _LOAD_RSS_SCRIPT, kind, path],
                          check=True, capture_output=True, text=True,
                          cwd=REPO_ROOT).stdout
  return _mib(json.loads(output.strip().splitlines()[-1])["delta"])


def _bruteforce(database: np.ndarray) -> ann_measure.Method:
  return ann_measure.Method("brute force (numpy)",
                lambda queries: ann_measure.exact_top_k(database, queries),
                {"database_mib": _mib(database.nbytes)})


def _label(num_leaves: int, leaves_to_search: int, reorder: int) -> str:
  return f"scann L{num_leaves} s{leaves_to_search} r{reorder}"


# ------------------------------------------------------------- real model ---




def run_real(args: argparse.Namespace, scratch: str) -> dict:
  """The real-model suite: the shipped index and search-time variants."""
  from serving import scann_index  # pylint: disable=g-import-not-at-top
  dataset = (common.load_interactions(args.dataset, args) if args.dataset
             else model_queries.workspace_dataset(args.model_dir))
  database, item_ids, queries, notes = model_queries.real_model_inputs(
      args.model_dir, dataset, args.real_queries, args.seed)
  shipped = scann_index.ScannIndex.load(args.model_dir)
  params = shipped.params
  # The shipped index's build time is not recorded; rebuild with its params.
  started = time.perf_counter()
  scann_index.ScannIndex.build(database, item_ids, params)
  rebuild_s = time.perf_counter() - started
  info = {"num_leaves": params.num_leaves, "build_s": round(rebuild_s, 3),
          "disk_mib": _mib(_dir_bytes(os.path.join(
              scann_index.index_dir(args.model_dir), "searcher"))),
          "load_rss_delta_mib": load_rss_delta_mib("model", args.model_dir)}
  searcher = shipped._searcher  # pylint: disable=protected-access
  settings = [(params.num_leaves_to_search, params.reorder_k),
              (max(1, params.num_leaves // 4), 100),
              (max(1, params.num_leaves // 8), 100),
              (params.num_leaves, params.reorder_k)]
  methods = [_bruteforce(database)] + [
      ann_measure.scann_method(_label(params.num_leaves, leaves, reorder)
                   + (" (shipped)" if (leaves, reorder) == settings[0] else ""),
                   searcher, leaves, reorder, info)
      for leaves, reorder in dict.fromkeys(settings)]
  ann_measure.measure(methods, queries, args.rounds, args.min_seconds,
                      args.seed)
  return {
      "model_dir": os.path.abspath(args.model_dir),
      "num_items": len(database), "dimension": database.shape[1],
      "num_queries": len(queries),
      "shipped_params": dataclasses.asdict(params), "notes": notes,
      "rows": ann_measure.summarize(methods),
  }


# -------------------------------------------------------------- synthetic ---


def clustered_vectors(rng: np.random.Generator, centers: np.ndarray, count: int,
                      spread: float) -> np.ndarray:
  """Unit vectors around random centers: normalize(center + noise)."""
  dimension = centers.shape[1]
  out = np.empty((count, dimension), dtype=np.float32)
  for start in range(0, count, 100_000):
    size = min(100_000, count - start)
    rows = centers[rng.integers(len(centers), size=size)] + (
        spread / np.sqrt(dimension)) * rng.standard_normal(
            (size, dimension), dtype=np.float32)
    out[start:start + size] = rows / np.linalg.norm(rows, axis=1,
                                                    keepdims=True)
  return out


def run_synthetic(args: argparse.Namespace, scratch: str) -> dict:
  """The synthetic suite: one index per tree size, several search settings."""
  rng = np.random.default_rng(args.seed)
  centers = rng.standard_normal((args.clusters, args.dimension),
                                dtype=np.float32)
  centers /= np.linalg.norm(centers, axis=1, keepdims=True)
  database = clustered_vectors(rng, centers, args.num_vectors, args.spread)
  queries = clustered_vectors(rng, centers, args.num_queries, args.spread)
  methods = [_bruteforce(database)]
  max_reorder = max(reorder for _, reorder in args.settings)
  for num_leaves in args.num_leaves:
    searcher, info = built_index(database, num_leaves,
                                 args.settings[0][0], max_reorder, scratch)
    print(f"built {num_leaves} leaves: {info}", flush=True)
    methods += [ann_measure.scann_method(_label(num_leaves, leaves, reorder),
                                         searcher, leaves, reorder, info)
                for leaves, reorder in args.settings]
  ann_measure.measure(methods, queries, args.rounds, args.min_seconds,
                      args.seed)
  return {
      "num_vectors": args.num_vectors, "dimension": args.dimension,
      "num_queries": args.num_queries, "clusters": args.clusters,
      "spread": args.spread,
      "data": ("unit-normalized center + spread/sqrt(d) * N(0, I) around "
               f"{args.clusters} random unit centers; queries drawn the same "
               "way"),
      "rows": ann_measure.summarize(methods),
  }


def goal_verdict(rows: list[dict]) -> dict:
  """Whether some ScaNN setting has recall@10 >= 0.95 at >= 10x brute force."""
  verdict = {"goal": f"recall@10 >= {GOAL_RECALL} at >= {GOAL_SPEEDUP:g}x "
                     "brute-force QPS"}
  for key in ("single_qps", "batched_qps"):
    passing = [row for row in rows[1:]
               if row["recall_at_10"] >= GOAL_RECALL
               and row[f"{key}_vs_bruteforce"] >= GOAL_SPEEDUP]
    best = max(passing, key=lambda row: row[f"{key}_vs_bruteforce"],
               default=None)
    verdict[key] = {"met": best is not None,
                    "best": best and {"method": best["method"],
                                      "recall_at_10": best["recall_at_10"],
                                      "speedup": best[f"{key}_vs_bruteforce"]}}
  return verdict


# ------------------------------------------------------------------ report ---


def format_rows(rows: list[dict]) -> list[str]:
  lines = [f"{'method':30s} {'recall':>6s} {'b1 QPS':>8s} {'x bf':>6s} "
           f"{'p50 ms':>7s} {'p99 ms':>7s} {'batch QPS':>9s} {'x bf':>6s} "
           f"{'build s':>7s} {'disk MiB':>8s} {'RSS MiB':>7s}"]
  for row in rows:
    rss = row.get("load_rss_delta_mib", row.get("database_mib", "-"))
    lines.append(
        f"{row['method']:30s} {row['recall_at_10']:6.3f} "
        f"{row['single_qps']:8.0f} {row['single_qps_vs_bruteforce']:6.1f} "
        f"{row['single_p50_ms']:7.3f} {row['single_p99_ms']:7.3f} "
        f"{row['batched_qps']:9.0f} {row['batched_qps_vs_bruteforce']:6.1f} "
        f"{row.get('build_s', '-')!s:>7s} {row.get('disk_mib', '-')!s:>8s} "
        f"{rss!s:>7s}")
  return lines


def format_table(result: dict) -> str:
  lines = [f"single core {result['cpu']}; loadavg start "
           f"{result['loadavg_start']} end {result['loadavg_end']}; "
           f"b1 = one query per call; x bf = QPS / brute-force QPS; "
           f"RSS = resident growth on loading the index (brute force: "
           "its float32 matrix)"]
  real = result.get("real")
  if real:
    lines += ["", f"REAL {real['model_dir']}: {real['num_items']} items x "
                  f"{real['dimension']}, {real['num_queries']} queries",
              f"  queries: {real['notes']['queries']}"]
    if "candidate_embedding_check" in real["notes"]:
      lines.append(f"  check: {real['notes']['candidate_embedding_check']}")
    lines += format_rows(real["rows"])
  synthetic = result.get("synthetic")
  if synthetic:
    lines += ["", f"SYNTHETIC {synthetic['num_vectors']:,} x "
                  f"{synthetic['dimension']} ({synthetic['clusters']} clusters,"
                  f" spread {synthetic['spread']}), "
                  f"{synthetic['num_queries']} queries"]
    lines += format_rows(synthetic["rows"])
    for key, label in (("single_qps", "batch of 1"),
                       ("batched_qps", "batched")):
      verdict = synthetic["goal"][key]
      best = verdict["best"]
      lines.append(
          f"goal {synthetic['goal']['goal']} ({label}): "
          + (f"MET, best {best['method']} (recall {best['recall_at_10']}, "
             f"{best['speedup']}x)" if verdict["met"] else "NOT met"))
  lines.append(f"total {result['wall_s']} s")
  return "\n".join(lines)


def _settings(text: str) -> list[tuple[int, int]]:
  pairs = []
  for pair in text.split(","):
    leaves, _, reorder = pair.partition(":")
    pairs.append((int(leaves), int(reorder)))
  return pairs


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--model_dir", default="",
                      help="pushed model version dir with an index "
                           "(assets.extra/scann_index); empty skips the real "
                           "suite")
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS), None)
  parser.add_argument("--real_queries", type=int, default=300,
                      help="users queried on the real model")
  parser.add_argument("--num_vectors", type=int, default=1_000_000,
                      help="synthetic database size; 0 skips the suite")
  parser.add_argument("--num_queries", type=int, default=1000)
  parser.add_argument("--dimension", type=int, default=64)
  parser.add_argument("--clusters", type=int, default=1000)
  parser.add_argument("--spread", type=float, default=1.0,
                      help="noise norm relative to the unit cluster centers")
  parser.add_argument("--num_leaves", default="1000,2000",
                      help="comma-separated tree sizes, one index each")
  parser.add_argument("--settings", default="5:100,20:100,50:100,100:250",
                      help="comma-separated leaves_to_search:reorder pairs "
                           "tried on every index")
  parser.add_argument("--rounds", type=int, default=5,
                      help="interleaving rounds over the queries")
  parser.add_argument("--min_seconds", type=float, default=0.3,
                      help="passes over a round's queries are repeated until "
                           "they took this long, per method")
  parser.add_argument("--cpu", type=int, default=0, help="core to pin to")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default=str(common.RESULTS_DIR / "ann.json"))
  args = parser.parse_args(argv)
  args.num_leaves = [int(n) for n in args.num_leaves.split(",")]
  args.settings = _settings(args.settings)

  os.sched_setaffinity(0, {args.cpu})
  result = {"command": common.command("benchmarks.ann", argv),
            "cpu": args.cpu,
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "machine": common.machine(),
            "threads": {variable: os.environ[variable] for variable in (
                "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
  started = time.perf_counter()
  scratch = tempfile.mkdtemp(prefix="ann_bench_")
  try:
    if args.model_dir:
      result["real"] = run_real(args, scratch)
    if args.num_vectors:
      result["synthetic"] = run_synthetic(args, scratch)
      result["synthetic"]["goal"] = goal_verdict(result["synthetic"]["rows"])
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  result["wall_s"] = round(time.perf_counter() - started, 1)
  result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
  print(format_table(result))
  common.write_results(args.output, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
