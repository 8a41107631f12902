"""`python -m serving.server` in a child process, and its CPU and memory.

Started on one model version on a free local port (`start_server` reads the
address it prints), stopped with SIGTERM (`stop_server`); `process_cpu_s`
and `process_rss_mib` read a process's clock and resident memory from
/proc. Used by `benchmarks.serving_latency`.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Optional, Sequence

# Children (the server, a pipeline run) run here, so that they import the
# same packages as this process.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRPC_THREADS = 8  # The server's default.


def start_server(model_path: str, model_name: str, version: str,
                 log_path: str, timeout_s: float = 300.0,
                 extra_flags: Sequence[str] = ()):
  """Starts the server on one model version; returns (process, address,
  command). `extra_flags` go to the server too (e.g. its history store)."""
  command = [sys.executable, "-m", "serving.server",
             f"--model_base_path={model_path}", f"--model_name={model_name}",
             f"--version_policy=specific:{version}", "--port=0",
             "--bind_address=127.0.0.1", f"--grpc_max_threads={GRPC_THREADS}",
             *extra_flags]
  log = open(log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
  process = subprocess.Popen(
      command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
  lines = queue.Queue()
  threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                   daemon=True).start()
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    try:
      line = lines.get(timeout=1.0)
    except queue.Empty:
      if process.poll() is not None:
        break
      continue
    if line.startswith("Serving gRPC on "):
      return process, line.split("Serving gRPC on ", 1)[1].strip(), command
  stop_server(process)
  raise RuntimeError(f"server did not report its address; see {log_path}")


def stop_server(process: subprocess.Popen) -> Optional[int]:
  if process.poll() is None:
    process.send_signal(signal.SIGTERM)
    try:
      process.wait(timeout=30)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
  return process.returncode


def process_cpu_s(pid: int) -> float:
  """User plus system CPU seconds a process has used (Linux /proc)."""
  with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
    # Fields after the parenthesised command name; utime and stime are the
    # 14th and 15th of the whole line.
    fields = f.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> Optional[float]:
  try:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return round(int(line.split()[1]) / 1024, 1)
  except OSError:
    pass
  return None
