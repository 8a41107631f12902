"""Tests for tests.parent_bound: a child that ends with its parent."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_ENV = dict(os.environ, PYTHONPATH=str(_REPO_ROOT))
# A module that runs until it is stopped: a web server on a free port.
_FOREVER = ["http.server", "0", "--bind", "127.0.0.1"]


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  # A zombie (exited, not yet reaped by init) counts as gone.
  stat = pathlib.Path(f"/proc/{pid}/stat")
  return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="parent-death signals are Linux only")
def test_the_child_ends_when_its_parent_is_killed():
  parent = subprocess.Popen(
      [sys.executable, "-c", textwrap.dedent(f"""
          import os, subprocess, sys, time
          child = subprocess.Popen(
              [sys.executable, "-m", "tests.parent_bound", str(os.getpid()),
               *{_FOREVER!r}], stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)
          print(child.pid, flush=True)
          time.sleep(600)
      """)],
      env=_ENV, stdout=subprocess.PIPE, text=True)
  child_pid = int(parent.stdout.readline())
  try:
    time.sleep(2)  # the child has bound itself and is serving
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while _alive(child_pid) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert not _alive(child_pid)
  finally:
    if _alive(child_pid):
      os.kill(child_pid, signal.SIGKILL)


def test_a_child_whose_parent_is_already_gone_does_not_start():
  not_my_parent = os.getpid() + 1_000_000
  result = subprocess.run(
      [sys.executable, "-m", "tests.parent_bound", str(not_my_parent),
       *_FOREVER], env=_ENV, capture_output=True, text=True, timeout=60)
  assert result.returncode == 1
  assert f"parent {not_my_parent} is gone; not starting" in result.stderr


def test_the_named_module_runs_as_main_with_its_arguments():
  result = subprocess.run(
      [sys.executable, "-m", "tests.parent_bound", str(os.getpid()),
       "json.tool", "--compact"],
      env=_ENV, input='{"a": [1, 2]}', capture_output=True, text=True,
      timeout=60)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '{"a":[1,2]}'


def test_a_missing_parent_pid_gives_the_usage():
  result = subprocess.run(
      [sys.executable, "-m", "tests.parent_bound", "json.tool"],
      env=_ENV, capture_output=True, text=True, timeout=60)
  assert result.returncode == 1
  assert "usage: python -m tests.parent_bound PARENT_PID MODULE" in result.stderr
