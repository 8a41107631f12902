"""Tests for server_process's reading of a process's CPU clock."""

import os
import time

import pytest

from benchmarks import server_process


def test_process_cpu_seconds_follow_the_process_clock():
  before = server_process.process_cpu_s(os.getpid())
  clock_before = time.process_time()
  while time.process_time() - clock_before < 0.2:
    pass
  used = server_process.process_cpu_s(os.getpid()) - before

  # /proc counts in clock ticks (10 ms).
  assert used == pytest.approx(time.process_time() - clock_before, abs=0.03)
