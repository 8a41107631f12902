"""Running a child process while measuring its process tree from outside.

`run_child` samples the resident memory of a command's process tree (the
command and, say, its Beam workers) until it exits, records its CPU time,
and kills it when it passes a memory or time `Budget`: the machine is
shared, and an OOM kill could hit someone else's process. Shared by the
scaling benchmarks (`benchmarks.scaling`, `benchmarks.ease_scale`,
`benchmarks.beam_worker_memory`, `benchmarks.catalogue_scaling`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import subprocess
import time
from typing import Sequence

import psutil


@dataclasses.dataclass
class ChildRun:
  """What one child process did, as seen from outside.

  Attributes:
    status: `ok`, `failed` (non-zero exit; -9 is usually the kernel's OOM
      killer), `over_memory_budget` or `over_time_budget` (killed by us).
    returncode: the child's exit status.
    wall_s: from start to exit.
    peak_rss_mib: the largest sampled sum of resident memory over the
      child's process tree.
    peak_main_rss_mib: the child's own peak (for a Beam step, the runner).
    peak_worker_rss_mib: the largest peak of any one of its descendants (for
      a Beam step in multi-processing mode, an SDK worker).
    cpu_s: user + system CPU seconds of the whole tree.
    load_average: the 1-minute load average at start and at exit.
    output_tail: the last lines the child printed.
  """
  status: str
  returncode: int
  wall_s: float
  peak_rss_mib: float
  peak_main_rss_mib: float
  peak_worker_rss_mib: float
  cpu_s: float
  load_average: tuple[float, float]
  output_tail: str


def _tree_rss_bytes(process: psutil.Process) -> tuple[int, int, int]:
  """Resident bytes of `process`, of its largest descendant, and of all."""
  sizes = []
  for member in [process, *process.children(recursive=True)]:
    try:
      sizes.append(member.memory_info().rss)
    except psutil.Error:  # Exited between listing and reading.
      sizes.append(0)
  return sizes[0], max(sizes[1:], default=0), sum(sizes)


def run_child(command: Sequence[str], log_path: pathlib.Path,
              max_rss_bytes: float, timeout_s: float,
              sample_every_s: float = 0.5,
              timeline: list[tuple[float, float]] | None = None) -> ChildRun:
  """Runs `command` in its own session, sampling its tree until it exits.

  The child is killed (its whole process group) when its tree's resident
  memory passes `max_rss_bytes` or it runs past `timeout_s`: the machine is
  shared, and an OOM kill could hit someone else's process. CPU time comes
  from `wait4` on this child alone: its own and its waited-for workers'.
  `timeline`, if given, gets every sample as (epoch seconds, tree MiB).
  """
  load_start = os.getloadavg()[0]
  started = time.time()
  peak = peak_main = peak_worker = 0
  status = None
  with open(log_path, "w", encoding="utf-8") as log:
    child = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    watched = psutil.Process(child.pid)
    while True:
      pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
      if pid:
        break
      main, worker, total = _tree_rss_bytes(watched)
      if timeline is not None:
        timeline.append((time.time(), total / 2**20))
      peak, peak_main = max(peak, total), max(peak_main, main)
      peak_worker = max(peak_worker, worker)
      if peak > max_rss_bytes:
        status = "over_memory_budget"
      elif time.time() - started > timeout_s:
        status = "over_time_budget"
      if status:
        os.killpg(child.pid, signal.SIGKILL)
        _, wait_status, usage = os.wait4(child.pid, 0)
        break
      time.sleep(sample_every_s)
  child.returncode = os.waitstatus_to_exitcode(wait_status)
  wall = time.time() - started
  tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
  return ChildRun(
      status=status or ("ok" if child.returncode == 0 else "failed"),
      returncode=child.returncode, wall_s=round(wall, 1),
      peak_rss_mib=round(peak / 2**20, 1),
      peak_main_rss_mib=round(peak_main / 2**20, 1),
      peak_worker_rss_mib=round(peak_worker / 2**20, 1),
      cpu_s=round(usage.ru_utime + usage.ru_stime, 1),
      load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
      output_tail=tail)


def directory_bytes(path: pathlib.Path) -> int:
  """Bytes of every file under `path` (0 if it does not exist)."""
  return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclasses.dataclass(frozen=True)
class Budget:
  """When a child is killed: its tree's resident memory, its run time, or
  the session's end (`time.time()` of it)."""
  max_rss_bytes: float
  step_timeout_s: float
  session_ends: float = float("inf")

  def timeout_s(self) -> float:
    """The time the next child may take."""
    return min(self.step_timeout_s, self.session_ends - time.time())
