"""Measuring nearest-neighbour search methods against exact top-k.

A `Method` answers `[b, d]` queries with `[b, K]` database rows. `measure`
runs several methods on the same queries, interleaved round by round so that
background load hits all alike, timing one query per call and batched
calls; `summarize` turns that into QPS, latency and recall@K rows, each
against the first method, brute force (`exact_top_k`). Shared by
`benchmarks.ann` and `benchmarks.scann_scale`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np

from benchmarks import common

K = 10
_WARMUP_QUERIES = 5


def exact_top_k(database: np.ndarray, queries: np.ndarray, k: int = K,
                chunk: int = 64) -> np.ndarray:
  """Exact top-k by dot product: matmul, argpartition, sort the k.

  Args:
    database: `[n, d]` float32.
    queries: `[b, d]` float32.
    k: neighbours per query.
    chunk: queries per matmul, bounding the `[chunk, n]` score matrix.

  Returns:
    `[b, k]` database row indices, best first.
  """
  out = np.empty((len(queries), k), dtype=np.int64)
  for start in range(0, len(queries), chunk):
    scores = queries[start:start + chunk] @ database.T
    top = np.argpartition(scores, -k, axis=1)[:, -k:]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    out[start:start + chunk] = np.take_along_axis(top, order, axis=1)
  return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
  hits = [len(set(row_found[:K].tolist()) & set(row_exact[:K].tolist()))
          for row_found, row_exact in zip(found, exact)]
  return float(np.mean(hits)) / K


# --------------------------------------------------------------- methods ---


@dataclasses.dataclass
class Method:
  """One way of answering queries, with its measurements.

  Attributes:
    name: label in the table.
    search: `[b, d]` queries -> `[b, K]` row indices.
    info: static facts (settings, build time, memory).
    single_latencies: wall seconds of each batch-of-1 call.
    single_cpu_s: process CPU seconds over all batch-of-1 calls.
    batched_wall_s: wall seconds of the batched calls.
    batched_cpu_s: process CPU seconds of the batched calls.
    batched_queries: queries answered by the batched calls.
    results: `[num_queries, K]` from the batched calls, for recall.
  """
  name: str
  search: object
  info: dict
  single_latencies: list = dataclasses.field(default_factory=list)
  single_cpu_s: float = 0.0
  batched_wall_s: float = 0.0
  batched_cpu_s: float = 0.0
  batched_queries: int = 0
  results: Optional[np.ndarray] = None


def scann_method(name: str, searcher, leaves_to_search: int, reorder: int,
                 info: dict) -> Method:
  def search(queries: np.ndarray) -> np.ndarray:
    neighbors, _ = searcher.search_batched(
        queries, final_num_neighbors=K, pre_reorder_num_neighbors=reorder,
        leaves_to_search=leaves_to_search)
    return np.asarray(neighbors)
  return Method(name, search, {**info, "leaves_to_search": leaves_to_search,
                               "reorder": reorder})


def measure(methods: list[Method], queries: np.ndarray, rounds: int,
            min_seconds: float, seed: int) -> None:
  """Runs every method on every query, interleaved round by round.

  In each round every method, in a fresh random order, first answers a few
  of the round's queries untimed (so no method pays for the cache another
  one evicted), then answers all of them one per call, then in one batched
  call; each of the two passes is repeated until it took `min_seconds`.

  Args:
    methods: filled in place.
    queries: `[b, d]`.
    rounds: the queries are split into this many consecutive chunks.
    min_seconds: least wall time per method, pass and round.
    seed: seeds the order of the methods in each round.
  """
  rng = np.random.default_rng(seed)
  for method in methods:
    method.results = np.empty((len(queries), K), dtype=np.int64)
  for chunk in np.array_split(np.arange(len(queries)), rounds):
    chunk_queries = np.ascontiguousarray(queries[chunk])
    for index in rng.permutation(len(methods)):
      method = methods[index]
      for row in range(min(_WARMUP_QUERIES, len(chunk_queries))):
        method.search(chunk_queries[row:row + 1])
      cpu_start = time.process_time()
      pass_start = time.perf_counter()
      while True:
        for row in range(len(chunk_queries)):
          started = time.perf_counter()
          method.search(chunk_queries[row:row + 1])
          method.single_latencies.append(time.perf_counter() - started)
        if time.perf_counter() - pass_start >= min_seconds:
          break
      method.single_cpu_s += time.process_time() - cpu_start
      cpu_start = time.process_time()
      pass_start = time.perf_counter()
      while True:
        found = method.search(chunk_queries)
        method.batched_queries += len(chunk_queries)
        if time.perf_counter() - pass_start >= min_seconds:
          break
      method.batched_wall_s += time.perf_counter() - pass_start
      method.batched_cpu_s += time.process_time() - cpu_start
      method.results[chunk] = found


def summarize(methods: list[Method]) -> list[dict]:
  """One row per method; ratios are against the first (brute force)."""
  rows = []
  for method in methods:
    latencies = method.single_latencies
    rows.append({
        "method": method.name, **method.info,
        "single_qps": round(len(latencies) / sum(latencies), 1),
        "single_cpu_qps": round(len(latencies) / max(method.single_cpu_s, 1e-9),
                                1),
        "single_p50_ms": common.percentile_ms(latencies, 50),
        "single_p99_ms": common.percentile_ms(latencies, 99),
        "batched_qps": round(method.batched_queries / method.batched_wall_s, 1),
        "batched_cpu_qps": round(
            method.batched_queries / max(method.batched_cpu_s, 1e-9), 1),
        "single_calls": len(latencies),
    })
  exact = methods[0].results
  baseline = rows[0]
  for method, row in zip(methods, rows):
    row["recall_at_10"] = round(recall_at_k(method.results, exact), 4)
    for key in ("single_qps", "batched_qps", "single_cpu_qps",
                "batched_cpu_qps"):
      row[f"{key}_vs_bruteforce"] = round(row[key] / baseline[key], 2)
  return rows
