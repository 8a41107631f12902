"""Runs a module as `__main__` in a process that ends when its parent dies.

  python -m tests.parent_bound PARENT_PID MODULE [ARG ...]

Test helpers start servers (the moto object store) from pytest workers that
hold many threads (TensorFlow, gRPC). Asking the kernel to end the child with
its parent from a `preexec_fn` runs Python between `fork` and `exec` in such a
process, which can deadlock or abort the child (a moto server once exited with
SIGABRT before answering). Here the request is made after `exec`, in a fresh
single-threaded interpreter, and the parent's pid is checked afterwards, so a
parent that died in between is not missed either.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

_PR_SET_PDEATHSIG = 1  # prctl option, from <linux/prctl.h>
_USAGE = "usage: python -m tests.parent_bound PARENT_PID MODULE [ARG ...]"


def bind_to_parent(parent_pid: int) -> None:
  """Ends this process with SIGTERM when `parent_pid`, its parent, dies.

  Args:
    parent_pid: the pid of the process that started this one.

  Raises:
    SystemExit: the parent is already gone (this process was re-parented).
  """
  if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
  if os.getppid() != parent_pid:
    raise SystemExit(f"parent {parent_pid} is gone; not starting")


def main(argv: list[str]) -> None:
  """Binds to the parent named in `argv`, then runs the module it names."""
  if len(argv) < 3 or not argv[1].isdigit():
    raise SystemExit(_USAGE)
  bind_to_parent(int(argv[1]))
  module = argv[2]
  sys.argv = [module, *argv[3:]]
  runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv)
