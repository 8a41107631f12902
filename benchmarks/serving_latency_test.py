"""Tests the serving benchmark's comparisons and verdicts."""

from benchmarks import serving_latency
from models import serving_names


def _levels(scann_p99_ms: float, scann_failed: int = 0) -> list[dict]:
  rows = []
  for concurrency in (1, 8):
    for signature, p50, p99 in (
        (serving_names.QUERY_EMBEDDING, 2.0, 4.0),
        (serving_names.RETRIEVE_SCANN, 3.0, scann_p99_ms),
        (serving_names.retrieve_top(100), 6.0, 20.0)):
      rows.append({"concurrency": concurrency, "signature": signature,
                   "p50_ms": p50 * concurrency, "p99_ms": p99 * concurrency,
                   "failed": (scann_failed
                              if signature == serving_names.RETRIEVE_SCANN
                              else 0)})
  return rows


def test_scann_is_compared_with_brute_force_at_each_concurrency():
  comparisons = serving_latency.compare_with_baseline(_levels(5.0))

  assert comparisons == [
      {"concurrency": 1, "scann_over_top100_p50": 0.5,
       "scann_over_top100_p99": 0.25, "scann_minus_query_embedding_p50_ms": 1.0},
      {"concurrency": 8, "scann_over_top100_p50": 0.5,
       "scann_over_top100_p99": 0.25, "scann_minus_query_embedding_p50_ms": 8.0}]


def test_goal_is_p99_at_most_10_ms_at_concurrency_1_without_failures():
  assert serving_latency.goal_verdict(_levels(10.0))["met"]
  assert not serving_latency.goal_verdict(_levels(10.01))["met"]
  assert not serving_latency.goal_verdict(_levels(9.0, scann_failed=1))["met"]
  assert serving_latency.goal_verdict(_levels(10.01))["p99_ms"] == 10.01


def test_qps_is_set_against_the_cores_over_the_server_cpu_per_request():
  levels = [{"concurrency": 1, "signature": serving_names.RETRIEVE_SCANN,
             "qps": 200.0, "server_cpu_ms_per_request": 4.0},
            {"concurrency": 8, "signature": serving_names.RETRIEVE_SCANN,
             "qps": 400.0, "server_cpu_ms_per_request": 4.0},
            {"concurrency": 8, "signature": serving_names.retrieve_top(100),
             "qps": 9.0, "server_cpu_ms_per_request": 1.0}]

  bounds = serving_latency.qps_bounds(levels, cores=2)

  # 2 cores / 4 ms per request: at most 500 requests a second.
  assert bounds == [
      {"concurrency": 1, "qps": 200.0, "server_cpu_ms_per_request": 4.0,
       "cpu_bound_qps_ceiling": 500.0, "share_of_ceiling": 0.4},
      {"concurrency": 8, "qps": 400.0, "server_cpu_ms_per_request": 4.0,
       "cpu_bound_qps_ceiling": 500.0, "share_of_ceiling": 0.8}]

