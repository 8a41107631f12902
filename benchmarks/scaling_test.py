"""Tests for the scaling benchmark's helpers (the benchmark itself is not run)."""

from __future__ import annotations

import sys
import time

import pytest

from benchmarks import scaling
from tfx_pipeline import config as config_lib


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


def test_step_config_caps_the_history_only_when_asked():
  default = scaling._step_config("log", "workspace", 2)
  assert (default.examples.history_length ==
          config_lib.ExamplesConfig().history_length)
  assert default.beam_args == scaling.beam_worker_args(2)
  assert scaling._step_config("log", "workspace", 1,
                              history_length=1).examples.history_length == 1


def test_beam_worker_args_ask_for_processes():
  assert scaling.beam_worker_args(2) == [
      "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def test_run_child_measures_cpu_memory_and_exit(tmp_path):
  timeline = []
  run = scaling.run_child(
      [sys.executable, "-c",
       # Pages of a fresh bytearray are resident only once written.
       "import time; block = bytearray(300 * 2**20)\n"
       "block[::4096] = b'x' * len(block[::4096])\n"
       "while time.process_time() < 1.0: pass"],
      tmp_path / "log", max_rss_bytes=4 * 2**30, timeout_s=60,
      sample_every_s=0.1, timeline=timeline)
  assert run.status == "ok" and run.returncode == 0
  assert run.peak_rss_mib > 300
  assert max(mib for _, mib in timeline) == pytest.approx(run.peak_rss_mib,
                                                           abs=0.1)
  assert run.cpu_s >= 1.0
  # The next child's CPU time is its own, not a running total.
  idle = scaling.run_child([sys.executable, "-c", "pass"], tmp_path / "log",
                           max_rss_bytes=4 * 2**30, timeout_s=60)
  assert idle.cpu_s < 1.0


def test_run_child_splits_its_own_memory_from_its_workers(tmp_path):
  worker = ("import time; block = bytearray(400 * 2**20); "
            "block[::4096] = b'x' * len(block[::4096]); time.sleep(2)")
  run = scaling.run_child(
      [sys.executable, "-c",
       "import subprocess, sys\n"
       f"subprocess.run([sys.executable, '-c', {worker!r}], check=True)"],
      tmp_path / "log", max_rss_bytes=4 * 2**30, timeout_s=60,
      sample_every_s=0.1)
  assert run.status == "ok"
  assert run.peak_worker_rss_mib > 400
  assert run.peak_main_rss_mib < 100
  assert run.peak_rss_mib >= run.peak_worker_rss_mib + run.peak_main_rss_mib - 5


@pytest.mark.parametrize("body, max_rss_mib, timeout_s, status", [
    ("block = bytearray(400 * 2**20)", 200, 60, "over_memory_budget"),
    ("pass", 4096, 1, "over_time_budget"),
])
def test_run_child_kills_a_child_over_its_budget(tmp_path, body, max_rss_mib,
                                                 timeout_s, status):
  run = scaling.run_child(
      [sys.executable, "-c", f"import time; {body}; time.sleep(60)"],
      tmp_path / "log", max_rss_bytes=max_rss_mib * 2**20,
      timeout_s=timeout_s, sample_every_s=0.1)
  assert run.status == status
  assert run.wall_s < 30


def test_run_child_reports_a_failure_with_its_output(tmp_path):
  run = scaling.run_child(
      [sys.executable, "-c", "raise SystemExit('step broke')"],
      tmp_path / "log", max_rss_bytes=4 * 2**30, timeout_s=60)
  assert run.status == "failed" and run.returncode == 1
  assert "step broke" in run.output_tail


def test_directory_bytes_counts_nested_files(tmp_path):
  (tmp_path / "a" / "b").mkdir(parents=True)
  (tmp_path / "a" / "b" / "f").write_bytes(b"x" * 10)
  (tmp_path / "g").write_bytes(b"y" * 5)
  assert scaling.directory_bytes(tmp_path) == 15
  assert scaling.directory_bytes(tmp_path / "missing") == 0


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


def test_budget_gives_a_step_no_more_than_the_session_has_left():
  assert scaling.Budget(2**30, 300).timeout_s() == 300
  ending_soon = scaling.Budget(2**30, 300, time.time() + 60).timeout_s()
  assert 50 < ending_soon <= 60
  assert scaling.Budget(2**30, 300, time.time() - 1).timeout_s() < 0


def test_measure_steps_stops_after_the_last_step_asked_for(tmp_path,
                                                          monkeypatch):
  started = []

  def fake_child(command, log_path, max_rss_bytes, timeout_s):
    started.append(command[command.index("--run-step") + 1])
    return scaling.ChildRun("ok", 0, 1.0, 100.0, 60.0, 40.0, 1.0, (0.0, 0.0),
                            "")

  monkeypatch.setattr(scaling, "run_child", fake_child)
  monkeypatch.setattr(scaling, "_step_seconds",
                      lambda workspace, step: {step.nodes[-1]: 1.0})
  budget = scaling.Budget(max_rss_bytes=2**30, step_timeout_s=60)
  records = scaling.measure_steps(
      "log", 1000, 1, tmp_path / "workspace", budget,
      last_step=scaling.STEPS[1])
  assert started == ["ExampleGen", "StatisticsGen"]
  assert [record["step"] for record in records] == started
  scaling.measure_steps("log", 1000, 1, tmp_path / "workspace", budget)
  assert started[2:] == [step.name for step in scaling.STEPS]


def test_component_peaks_take_the_samples_inside_each_components_run(
    monkeypatch, tmp_path):
  from tfx_pipeline import run_summary  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(scaling, "_component_runs", lambda workspace: [
      run_summary.ComponentRun("Transform", "complete", 10.0, 100.0),
      run_summary.ComponentRun("Trainer", "complete", 5.0, 111.0),
      run_summary.ComponentRun("Pusher", "complete", 0.5, 130.0)])
  timeline = [(99.0, 9000.0), (100.0, 1000.0), (110.0, 1500.0),
              (110.5, 8000.0), (111.0, 2000.0), (116.0, 2500.0)]
  assert scaling._component_peaks(tmp_path, timeline) == {
      "Transform": 1500.0, "Trainer": 2500.0}
