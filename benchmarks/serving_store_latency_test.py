"""The store benchmark's arithmetic on known rows, and its requests."""

from __future__ import annotations

from benchmarks import eval_requests
from benchmarks import serving_store_latency as bench
from data import features
from serving import history_store


def _row(concurrency, path, p50, p99, cpu):
  return {"concurrency": concurrency, "path": path, "p50_ms": p50,
          "p99_ms": p99, "server_cpu_ms_per_request": cpu}


def test_compare_paths_says_what_the_lookup_adds():
  rows = [_row(1, bench.BASELINE, 4.0, 8.0, 3.0),
          _row(1, bench.LOOKUP, 4.5, 9.0, 3.25),
          _row(8, bench.BASELINE, 10.0, 20.0, 3.5),
          _row(8, bench.LOOKUP, 11.0, 25.0, 4.0)]
  # Every request of a path took the same time: the interval is a point.
  latencies = {(1, bench.BASELINE): [0.008] * 100,
               (1, bench.LOOKUP): [0.009] * 100,
               (8, bench.BASELINE): [0.020] * 100,
               (8, bench.LOOKUP): [0.025] * 100}
  assert bench.compare_paths(rows, latencies) == [
      {"concurrency": 1, "added_p50_ms": 0.5, "added_p99_ms": 1.0,
       "added_p99_ms_ci95": [1.0, 1.0],
       "lookup_over_baseline_p50": 1.125, "lookup_over_baseline_p99": 1.125,
       "added_server_cpu_ms": 0.25},
      {"concurrency": 8, "added_p50_ms": 1.0, "added_p99_ms": 5.0,
       "added_p99_ms_ci95": [5.0, 5.0],
       "lookup_over_baseline_p50": 1.1, "lookup_over_baseline_p99": 1.25,
       "added_server_cpu_ms": 0.5}]


def test_goal_verdicts_need_small_added_p99_and_every_event_in_time():
  def store(name, ci95, missed, max_ms):
    return {"store": name,
            "vs_baseline": [{"concurrency": 1, "added_p99_ms": sum(ci95) / 2,
                             "added_p99_ms_ci95": ci95}],
            "freshness": {"missed": missed, "max_ms": max_ms}}

  verdicts = bench.goal_verdicts([store("redis", [1.0, 2.0], 0, 20.0),
                                  store("sqlite", [2.1, 3.0], 0, 20.0),
                                  store("noisy", [-1.0, 3.0], 0, 20.0),
                                  store("late", [0.0, 0.2], 1, 20.0),
                                  store("slow", [0.0, 0.2], 0, 1500.0)])
  assert [(v["latency_met"], v["freshness_met"]) for v in verdicts] == [
      (True, True), (False, True), (None, True), (True, False),
      (True, False)]


def test_both_paths_ask_for_the_same_user_one_without_history():
  users = [eval_requests.EvalUser("7", ["1", "2"], 100)]
  pools = bench.request_pools(users, "retrieval", k=5)
  snapshot = bench.eval_snapshot(users)

  assert features.HISTORY_ITEM_IDS in pools[bench.BASELINE][0].inputs
  assert features.HISTORY_ITEM_IDS not in pools[bench.LOOKUP][0].inputs
  assert (pools[bench.LOOKUP][0].inputs[features.USER_ID]
          == pools[bench.BASELINE][0].inputs[features.USER_ID])
  assert snapshot.as_of == 100
  assert snapshot.histories == {
      "7": history_store.UserHistory(("1", "2"), (100, 100))}
