"""Load-tests the retrieval model the pipeline pushed, served over gRPC.

Serves one pushed model version (`--model-dir`: its query tower, Transform
graph, signatures and ScaNN index are the product's) with
`python -m serving.server` in a subprocess on 127.0.0.1, and sends it
TF Serving Predict requests built from the dataset's real eval users: each
request carries an eval user's id, their history before the held-out item
(the pipeline's `history_length`, 50) and the held-out item's timestamp,
exactly as the pipeline's Evaluator and serving demo see them. `--requests`
requests per signature go out at each concurrency level, from that many
threads with a channel each, after a warm-up.

Signatures measured, interleaved block by block at every level so that
background load hits them alike:

- `query_embedding`: the query tower alone (Transform graph included);
- `retrieve_scann`: query tower + ScaNN top `--k` (100), history excluded;
- `retrieve_top100`: query tower + exact brute-force top 100 in the graph
  over the model's own catalogue (the real items only, at every
  `--candidates`), history excluded: the baseline `retrieve_scann` is
  compared with, in the same run.

`--candidates N` grows the ScaNN database to N items around the real item
embeddings (see `served_catalogue.grow_database`), builds an index over it
with the pipeline's default `ScannParams` (fitted to N items,
`ScannParams.fitted_to`) and serves the pushed SavedModel with that index
instead of its own. The query tower and `retrieve_top100` do not change. A model the pipeline trained
on a catalogue of N items needs no growing: its pushed index already holds
its N `candidate_embedding` vectors, and its `retrieve_top100` is brute force
over all N.

Concurrency beyond 1 is bounded by CPU on a small machine: `qps_bounds` sets
the measured QPS against the cores divided by the server's CPU time per
request (client and server share the cores, so the measured QPS stays below).

    python -m tfx_pipeline run --dataset movielens-100k \\
        --workspace /tmp/ws --no-demo
    python -m benchmarks.serving_latency --model-dir /tmp/ws/serving
    python -m benchmarks.serving_latency --model-dir /tmp/ws/serving \\
        --candidates 1000000

Without `--model-dir` the benchmark first runs that pipeline (family
two_tower) on the dataset in a temporary workspace. Writes
`benchmarks/results/serving_real_<dataset>[_<candidates>].json` (or
`--output`) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from benchmarks import common
from benchmarks import eval_requests
from benchmarks import served_catalogue
from benchmarks import server_process
from data import importers
from models import serving_names
from serving import client
from tfx_pipeline import config as config_lib

EXACT_SIGNATURE = serving_names.retrieve_top(100)
SIGNATURES = (serving_names.QUERY_EMBEDDING, serving_names.RETRIEVE_SCANN,
              EXACT_SIGNATURE)
GOAL_P99_MS = 10.0
GOAL_SIGNATURE = serving_names.RETRIEVE_SCANN
GOAL_CONCURRENCY = 1
_WARMUP_REQUESTS = 50


# ----------------------------------------------------------------- model ---


def run_pipeline(dataset: str, dataset_dir: str, workspace: str) -> str:
  """Runs `python -m tfx_pipeline run` (two_tower); returns its serving dir."""
  command = [sys.executable, "-m", "tfx_pipeline", "run", "--dataset", dataset,
             "--workspace", workspace, "--no-demo"]
  if dataset_dir:
    command += ["--dataset-dir", dataset_dir]
  common.log(f"no --model-dir: running {shlex.join(command)}")
  subprocess.run(command, cwd=server_process.REPO_ROOT, check=True)
  return os.path.join(workspace, "serving")


# ----------------------------------------------------------------- load ---


def run_block(address: str, pool: list, first: int, total: int,
              concurrency: int):
  """Sends `pool[first:first + total]` (cycling) from `concurrency` threads,
  one channel each.

  Returns:
    `(latencies of successes, failure counts by code, wall seconds)`.
  """
  counter = itertools.count()
  ready = threading.Barrier(concurrency + 1)
  latencies = [[] for _ in range(concurrency)]
  failures = [collections.Counter() for _ in range(concurrency)]

  def worker(slot: int) -> None:
    with grpc.insecure_channel(address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      grpc.channel_ready_future(channel).result(timeout=30)
      ready.wait()
      while (n := next(counter)) < total:
        started = time.perf_counter()
        try:
          stub.Predict(pool[(first + n) % len(pool)], timeout=30)
          latencies[slot].append(time.perf_counter() - started)
        except grpc.RpcError as error:
          failures[slot][error.code().name] += 1

  threads = [threading.Thread(target=worker, args=(slot,))
             for slot in range(concurrency)]
  for thread in threads:
    thread.start()
  ready.wait()
  started = time.perf_counter()
  for thread in threads:
    thread.join()
  wall_s = time.perf_counter() - started
  return ([x for slot in latencies for x in slot],
          sum(failures, collections.Counter()), wall_s)


def served_recall(address: str, pools: dict,
                  users: Sequence[eval_requests.EvalUser],
                  item_ids: Sequence[str], vectors: np.ndarray, k: int,
                  count: int) -> float:
  """Recall@k of served `retrieve_scann` against exact search, same database.

  The exact answer scores every database vector against the served
  `query_embedding` of the same request, history excluded.
  """
  row_of = {item_id: row for row, item_id in enumerate(item_ids)}
  with grpc.insecure_channel(address) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    recalls = []
    for user, embedding_request, scann_request in zip(
        users[:count], pools[serving_names.QUERY_EMBEDDING],
        pools[serving_names.RETRIEVE_SCANN]):
      query = tf.make_ndarray(stub.Predict(embedding_request, timeout=30)
                              .outputs[serving_names.EMBEDDING])[0]
      found = tf.make_ndarray(stub.Predict(scann_request, timeout=30)
                              .outputs[serving_names.ITEM_IDS])[0]
      scores = vectors @ query
      scores[[row_of[i] for i in user.history if i in row_of]] = -np.inf
      exact = np.argpartition(-scores, k)[:k]
      recalls.append(len({item_ids[row] for row in exact}
                         & {item_id.decode() for item_id in found}) / k)
  return round(float(np.mean(recalls)), 4)


def _ms(values: list, q: float) -> Optional[float]:
  return common.percentile_ms(values, q) if values else None


def measure_levels(address: str, server_pid: int, pools: dict,
                   args: argparse.Namespace,
                   names: Sequence[str] = SIGNATURES,
                   label: str = "signature",
                   latencies_by_level: dict | None = None) -> list[dict]:
  """One row per (concurrency, signature): QPS, latency percentiles and the
  server's CPU time per request, which other jobs on the machine inflate far
  less than wall-clock latency.

  Args:
    address: the server's.
    server_pid: its process, for its CPU time.
    pools: requests by name.
    args: `concurrency`, `blocks` and `requests` (per name and level).
    names: the pools measured, interleaved block by block.
    label: what a row calls its name.
    latencies_by_level: if given, receives every successful request's
      latency in seconds under `(concurrency, name)`.
  """
  levels = []
  names = tuple(names)
  for concurrency in args.concurrency:
    per_signature = {signature: ([], collections.Counter(), 0.0, 0.0)
                     for signature in names}
    for block in range(args.blocks):
      first = block * args.requests // args.blocks
      block_requests = (block + 1) * args.requests // args.blocks - first
      shift = block % len(names)
      for signature in names[shift:] + names[:shift]:
        cpu_before = server_process.process_cpu_s(server_pid)
        latencies, failures, wall_s = run_block(
            address, pools[signature], first, block_requests, concurrency)
        cpu_s = server_process.process_cpu_s(server_pid) - cpu_before
        done, failed, total_s, total_cpu_s = per_signature[signature]
        per_signature[signature] = (done + latencies, failed + failures,
                                    total_s + wall_s, total_cpu_s + cpu_s)
    for signature, (latencies, failures, wall_s, cpu_s) in (
        per_signature.items()):
      requests = len(latencies) + sum(failures.values())
      if latencies_by_level is not None:
        latencies_by_level[(concurrency, signature)] = latencies
      levels.append({
          "concurrency": concurrency, label: signature,
          "ok": len(latencies), "failed": sum(failures.values()),
          "failures": dict(failures),
          "qps": round(len(latencies) / wall_s, 1),
          "server_cpu_ms_per_request": round(cpu_s * 1e3 / requests, 3),
          "p50_ms": _ms(latencies, 50), "p90_ms": _ms(latencies, 90),
          "p99_ms": _ms(latencies, 99), "max_ms": _ms(latencies, 100)})
    common.log(f"concurrency {concurrency} done")
  return levels


def compare_with_baseline(levels: list[dict]) -> list[dict]:
  """`retrieve_scann` against `retrieve_top100` and `query_embedding`, per
  concurrency: latency ratios to the brute-force baseline and what the
  search adds to the query tower, both from the same run."""
  by_key = {(row["concurrency"], row["signature"]): row for row in levels}
  comparisons = []
  for concurrency in dict.fromkeys(row["concurrency"] for row in levels):
    scann = by_key[(concurrency, serving_names.RETRIEVE_SCANN)]
    exact = by_key[(concurrency, EXACT_SIGNATURE)]
    tower = by_key[(concurrency, serving_names.QUERY_EMBEDDING)]
    comparisons.append({
        "concurrency": concurrency,
        "scann_over_top100_p50": round(scann["p50_ms"] / exact["p50_ms"], 3),
        "scann_over_top100_p99": round(scann["p99_ms"] / exact["p99_ms"], 3),
        "scann_minus_query_embedding_p50_ms": round(
            scann["p50_ms"] - tower["p50_ms"], 3)})
  return comparisons


def qps_bounds(levels: list[dict], cores: int) -> list[dict]:
  """Per concurrency, `retrieve_scann`'s QPS against a CPU-bound ceiling:
  `cores` seconds of CPU per second over the server's CPU per request. A
  measured QPS near the ceiling says the cores bound it, not waiting."""
  bounds = []
  for row in levels:
    if row["signature"] != serving_names.RETRIEVE_SCANN:
      continue
    ceiling = cores * 1e3 / row["server_cpu_ms_per_request"]
    bounds.append({"concurrency": row["concurrency"], "qps": row["qps"],
                   "server_cpu_ms_per_request":
                       row["server_cpu_ms_per_request"],
                   "cpu_bound_qps_ceiling": round(ceiling, 1),
                   "share_of_ceiling": round(row["qps"] / ceiling, 3)})
  return bounds


def goal_verdict(levels: list[dict]) -> dict:
  """Whether `retrieve_scann` has p99 <= 10 ms, no failure, at concurrency 1."""
  row = next((row for row in levels if row["signature"] == GOAL_SIGNATURE
              and row["concurrency"] == GOAL_CONCURRENCY), None)
  return {"goal": f"{GOAL_SIGNATURE} p99 <= {GOAL_P99_MS:g} ms at "
                  f"concurrency {GOAL_CONCURRENCY}",
          "p99_ms": row and row["p99_ms"],
          "met": bool(row and row["failed"] == 0
                      and row["p99_ms"] <= GOAL_P99_MS)}


# ------------------------------------------------------------- benchmark ---


def run_benchmark(args: argparse.Namespace, command: str) -> dict:
  started = time.perf_counter()
  scratch = tempfile.mkdtemp(prefix="serving_bench_")
  # A run under `nice -n -10` says so: other jobs then preempt it less.
  result = {"command": command, "machine": common.machine(),
            "niceness": os.nice(0),
            "requests_per_level": args.requests, "blocks": args.blocks,
            "k": args.k}
  process = None
  try:
    model_dir = args.model_dir or run_pipeline(
        args.dataset, args.dataset_dir, os.path.join(scratch, "workspace"))
    version_dir = os.path.abspath(
        served_catalogue.pushed_version_dir(model_dir))
    model_name = os.path.basename(os.path.dirname(version_dir))
    version = os.path.basename(version_dir)
    served_path, item_ids, vectors, database = (
        served_catalogue.served_database(version_dir, args.candidates,
                                         args.noise_scale, args.seed, scratch))
    result["model"] = {"version_dir": version_dir, "model_name": model_name,
                       "version": version,
                       "pipeline_run_here": not args.model_dir}
    result["database"] = database

    users = eval_requests.eval_users(
        common.load_interactions(args.dataset, args),
        config_lib.ExamplesConfig())
    result["requests"] = eval_requests.describe(
        users, common.dataset_label(args.dataset, args),
        "their history before the held-out item, its timestamp")
    pools = {signature: eval_requests.request_pool(users, model_name,
                                                   signature, args.k)
             for signature in SIGNATURES}
    process, address, server_command = server_process.start_server(
        served_path, model_name, version, os.path.join(scratch, "server.log"))
    result["server"] = {
        "command": shlex.join(server_command), "address": address,
        "grpc_max_threads": server_process.GRPC_THREADS,
        "note": "server and load generator share this machine's cores"}
    client.wait_until_available(address, model_name, timeout_s=300)
    with grpc.insecure_channel(address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      for signature in SIGNATURES:
        for request in pools[signature][-_WARMUP_REQUESTS:]:
          stub.Predict(request, timeout=30)
    result[f"served_recall_at_{args.k}"] = served_recall(
        address, pools, users, item_ids, vectors, args.k, args.recall_users)
    result["levels"] = measure_levels(address, process.pid, pools, args)
    result["server"]["rss_mib_after_load"] = server_process.process_rss_mib(
        process.pid)
  finally:
    if process is not None:
      result["server"]["exit_code"] = server_process.stop_server(process)
    shutil.rmtree(scratch, ignore_errors=True)
  result["baseline"] = (
      f"{EXACT_SIGNATURE}: in-graph brute force over the model's catalogue "
      f"({result['database']['real_items']} real items, whatever the "
      "database size), measured in the same run")
  result["vs_baseline"] = compare_with_baseline(result["levels"])
  result["qps_bounds"] = qps_bounds(result["levels"], os.cpu_count())
  result["goal"] = goal_verdict(result["levels"])
  result["wall_s"] = round(time.perf_counter() - started, 1)
  result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
  return result


def format_table(result: dict) -> str:
  database = result["database"]
  comparisons = {row["concurrency"]: row for row in result["vs_baseline"]}
  rows = []
  for row in result["levels"]:
    ratio = ""
    if row["signature"] == serving_names.RETRIEVE_SCANN:
      comparison = comparisons[row["concurrency"]]
      ratio = (f"{comparison['scann_over_top100_p50']:.2f} / "
               f"{comparison['scann_over_top100_p99']:.2f}")
    rows.append([f"{row['concurrency']} {row['signature']}", row["ok"],
                 row["failed"], f"{row['qps']:.1f}", f"{row['p50_ms']:.2f}",
                 f"{row['p90_ms']:.2f}", f"{row['p99_ms']:.2f}",
                 f"{row['server_cpu_ms_per_request']:.2f}", ratio])
  goal = result["goal"]
  recall_key = f"served_recall_at_{result['k']}"
  return "\n".join([
      f"{result['model']['version_dir']}: ScaNN database {database['items']:,}"
      f" items x {database['dimension']} ({database['real_items']:,} real); "
      f"{result['requests']['eval_users']} eval users of "
      f"{result['requests']['dataset']}; k {result['k']}",
      f"load average start {result['machine']['load_average']} end "
      f"{result['load_average_end']}, niceness {result['niceness']}; "
      f"{recall_key} of "
      f"{serving_names.RETRIEVE_SCANN} vs exact: {result[recall_key]}",
      f"index: {database.get('params', {}).get('num_leaves')} leaves, "
      f"{database.get('params', {}).get('num_leaves_to_search')} searched, "
      f"reorder {database.get('params', {}).get('reorder_k')}; "
      f"{database['index_disk_bytes'] / 2**20:.1f} MiB on disk; build "
      f"{database.get('build_s', 'not measured (the pipeline built it)')} s",
      common.aligned_table(
          ["conc signature", "ok", "fail", "QPS", "p50 ms", "p90 ms",
           "p99 ms", "server CPU ms", f"scann/{EXACT_SIGNATURE} p50 / p99"],
          rows),
      "; ".join(f"c={bound['concurrency']}: {bound['qps']} QPS = "
                f"{bound['share_of_ceiling']:.0%} of the CPU-bound ceiling "
                f"{bound['cpu_bound_qps_ceiling']}"
                for bound in result["qps_bounds"]),
      f"goal {goal['goal']}: {'MET' if goal['met'] else 'NOT met'} "
      f"(p99 {goal['p99_ms']} ms); total {result['wall_s']} s"])


def default_output(args: argparse.Namespace) -> str:
  suffix = f"_{args.candidates}" if args.candidates else ""
  return str(common.RESULTS_DIR / (
      f"serving_real_{common.dataset_label(args.dataset, args)}{suffix}.json"))


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m benchmarks.serving_latency",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument(
      "--model-dir", default="",
      help="a pushed version dir, its model dir or the serving base path "
           "(<workspace>/serving); empty: run the pipeline first")
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS),
                               "movielens-100k")
  parser.add_argument("--candidates", type=int, default=0,
                      help="grow the ScaNN database to this many items "
                           "(0: the real catalogue)")
  parser.add_argument("--noise-scale", type=float, default=0.1,
                      help="synthetic items' noise norm relative to the real "
                           "vector's (default: %(default)s)")
  parser.add_argument("--k", type=int, default=100,
                      help="retrieve_scann's k (default: %(default)s, as "
                           f"{EXACT_SIGNATURE})")
  parser.add_argument("--requests", type=int, default=2000,
                      help="requests per signature per concurrency level")
  parser.add_argument("--concurrency", default="1,8,32",
                      help="comma-separated concurrency levels")
  parser.add_argument("--blocks", type=int, default=4,
                      help="interleaving blocks per level")
  parser.add_argument("--recall-users", type=int, default=200,
                      help="eval users whose served answers are checked "
                           "against exact search")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", default="",
                      help="result JSON (default: results/serving_real_"
                           "<dataset>[_<candidates>].json)")
  args = parser.parse_args(argv)
  args.concurrency = [int(c) for c in args.concurrency.split(",")]
  result = run_benchmark(
      args, common.command("benchmarks.serving_latency", argv))
  print(format_table(result))
  common.write_results(args.output or default_output(args), result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
