"""Tests for child_process: a child's tree measured, and killed over budget."""

from __future__ import annotations

import sys
import time

import pytest

from benchmarks import child_process


def test_run_child_measures_cpu_memory_and_exit(tmp_path):
  timeline = []
  run = child_process.run_child(
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
  idle = child_process.run_child([sys.executable, "-c", "pass"],
                                 tmp_path / "log", max_rss_bytes=4 * 2**30,
                                 timeout_s=60)
  assert idle.cpu_s < 1.0


def test_run_child_splits_its_own_memory_from_its_workers(tmp_path):
  worker = ("import time; block = bytearray(400 * 2**20); "
            "block[::4096] = b'x' * len(block[::4096]); time.sleep(2)")
  run = child_process.run_child(
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
  run = child_process.run_child(
      [sys.executable, "-c", f"import time; {body}; time.sleep(60)"],
      tmp_path / "log", max_rss_bytes=max_rss_mib * 2**20,
      timeout_s=timeout_s, sample_every_s=0.1)
  assert run.status == status
  assert run.wall_s < 30


def test_run_child_reports_a_failure_with_its_output(tmp_path):
  run = child_process.run_child(
      [sys.executable, "-c", "raise SystemExit('step broke')"],
      tmp_path / "log", max_rss_bytes=4 * 2**30, timeout_s=60)
  assert run.status == "failed" and run.returncode == 1
  assert "step broke" in run.output_tail


def test_directory_bytes_counts_nested_files(tmp_path):
  (tmp_path / "a" / "b").mkdir(parents=True)
  (tmp_path / "a" / "b" / "f").write_bytes(b"x" * 10)
  (tmp_path / "g").write_bytes(b"y" * 5)
  assert child_process.directory_bytes(tmp_path) == 15
  assert child_process.directory_bytes(tmp_path / "missing") == 0


def test_budget_gives_a_step_no_more_than_the_session_has_left():
  assert child_process.Budget(2**30, 300).timeout_s() == 300
  ending_soon = child_process.Budget(2**30, 300, time.time() + 60).timeout_s()
  assert 50 < ending_soon <= 60
  assert child_process.Budget(2**30, 300, time.time() - 1).timeout_s() < 0
