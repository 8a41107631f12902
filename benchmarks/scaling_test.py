"""Tests for the scaling benchmark's fits, table and merging (none run)."""

from __future__ import annotations

import pytest

from benchmarks import scaling


def test_fit_exponent_recovers_a_power_law():
  sizes = [1e5, 1e6, 3e6, 1e7]
  assert scaling.fit_exponent(sizes, [2e-4 * n for n in sizes]) == (
      pytest.approx(1.0))
  assert scaling.fit_exponent(sizes, [5 * n ** 1.3 for n in sizes]) == (
      pytest.approx(1.3))
  # A fixed start-up cost flattens the curve below 1.
  assert scaling.fit_exponent(sizes, [60 + 1e-5 * n for n in sizes]) < 0.9


def test_fit_exponent_needs_two_sizes_and_positive_values():
  with pytest.raises(ValueError, match="two distinct sizes"):
    scaling.fit_exponent([1e6, 1e6], [1.0, 2.0])
  with pytest.raises(ValueError, match="positive"):
    scaling.fit_exponent([1e5, 1e6], [0.0, 2.0])


def _run(size, workers, step, seconds, rss, status="ok"):
  return {"size": size, "workers": workers, "step": step, "status": status,
          "seconds": seconds, "cpu_s": seconds and 2 * seconds,
          "peak_rss_mib": rss}


def test_summarize_fits_finished_steps_and_compares_workers():
  runs = [
      _run(100_000, 1, "ExampleGen", 10.0, 500.0),
      _run(1_000_000, 1, "ExampleGen", 100.0, 2000.0),
      _run(3_000_000, 1, "ExampleGen", None, 9000.0, "over_memory_budget"),
      _run(100_000, 2, "ExampleGen", 10.0, 500.0),
      _run(1_000_000, 2, "ExampleGen", 80.0, 2100.0),
      _run(100_000, 1, "Transform", 40.0, 1000.0),
      _run(1_000_000, 1, "Transform", 160.0, 1500.0),
  ]
  summary = scaling.summarize(runs)
  assert summary["exponents"]["1"] == {
      "ExampleGen": pytest.approx(1.0), "Transform": pytest.approx(0.602,
                                                                   abs=1e-3)}
  assert summary["cpu_exponents"]["1"] == summary["exponents"]["1"]
  assert summary["speedups"] == {"100000": {"ExampleGen": 1.0},
                                 "1000000": {"ExampleGen": 1.25}}
  assert summary["rss_growth"]["1"]["100000->1000000"] == {
      "ExampleGen": 4.0, "Transform": 1.5}
  # The killed run counts in no fit and no ratio.
  assert "1000000->3000000" not in summary["rss_growth"]["1"]


def test_format_table_lists_speedups_by_size_not_by_text():
  runs = [dict(_run(size, workers, "ExampleGen", size / 1e4 / workers, 100.0),
               wall_s=1.0, rows_per_s_per_worker=1, rows_per_cpu_s=1,
               output_bytes=0)
          for size in (3_000_000, 10_000_000) for workers in (1, 2)]
  # As a results file holds it: JSON sorts the keys as text, "10..." first.
  summary = scaling.summarize(runs)
  summary["speedups"] = dict(sorted(summary["speedups"].items()))
  lines = scaling.format_table(
      {"runs": runs, "full_pipeline": {}, **summary}).splitlines()
  speedups = [line for line in lines if line.startswith("speed-up")]
  assert [line.split(" rows")[0].rsplit(" ", 1)[1] for line in speedups] == [
      "3,000,000", "10,000,000"]


def test_merge_results_keeps_both_sessions_measurements():
  def results(runs, pipeline, started):
    return {"runs": runs, "full_pipeline": pipeline, "generation": {},
            "sessions": [{"started": started, "command": "c"}]}

  theirs = results([_run(100_000, 1, "ExampleGen", 10.0, 500.0),
                    _run(100_000, 1, "Transform", 50.0, 900.0)],
                   {"1000000": {"status": "ok"}}, "t1")
  ours = results([_run(100_000, 1, "Transform", 40.0, 1000.0)], {}, "t2")
  merged = scaling.merge_results(ours, theirs)
  assert sorted((run["step"], run["seconds"]) for run in merged["runs"]) == [
      ("ExampleGen", 10.0), ("Transform", 40.0)]
  assert merged["full_pipeline"] == {"1000000": {"status": "ok"}}
  assert [session["started"] for session in merged["sessions"]] == ["t1", "t2"]

