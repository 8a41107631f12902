"""The Trainer's executor in a fresh Python process.

LocalDagRunner runs every executor in the pipeline's own process, and what a
Trainer allocates (TensorFlow's buffers, the allocator's arenas) is not
given back when it returns. At 10M interactions x 1M items the pipeline
process still held 12.2 GiB after the Trainer; the Evaluator and the ScaNN
index then stacked on it, to 16.6 GiB and past 20 GiB
(benchmarks/results/catalogue_scaling_10m.json). `ProcessTrainer` runs the
Trainer's own executor (`GenericExecutor`, the family's `run_fn`) in a child
process instead, so its memory ends with it; a failure fails the component
with the child's error. The baselines' Trainer runs the same child but
records a failure instead of raising it (`baseline_fit`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils

from tfx_pipeline.components import trainer_child

# How often the parent looks whether a timed child has ended.
_POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class ChildRun:
  """How the Trainer's child process ended.

  Attributes:
    exit_status: its exit code, or minus the signal that killed it.
    error: what it wrote about its exception, "" if nothing.
    peak_rss_mib: its own peak resident memory.
    timed_out: whether the parent killed it at its time budget.
  """
  exit_status: int
  error: str
  peak_rss_mib: float
  timed_out: bool


def exit_reason(exit_status: int, error: str,
                timeout_s: float | None = None) -> str:
  """The reason a child ended, from its exit status and its own words.

  Args:
    exit_status: the exit code, or minus the signal that killed it.
    error: what the child wrote about its exception, "" if nothing.
    timeout_s: the time budget the parent killed it at, if it did.
  """
  if timeout_s is not None:
    return (f"the fit took longer than its budget, baselines.fit_timeout_s="
            f"{timeout_s:g} s, and was stopped")
  if error:
    return error
  if exit_status < 0:
    name = signal.Signals(-exit_status).name
    if -exit_status == signal.SIGKILL:
      return (f"killed by {name}, most likely by the kernel's out-of-memory "
              "killer")
    return f"the fit process died of {name} in native code"
  return f"the fit process exited with status {exit_status}"


def run_in_child(input_dict, output_dict, exec_properties: dict[str, Any],
                 timeout_s: Optional[float] = None) -> ChildRun:
  """Runs the Trainer's executor on these artifacts in a child process.

  `os.wait4` rather than `Popen.wait`: it also returns the child's own peak
  memory, which the pipeline process's rusage would mix with its other
  children's. A child past `timeout_s` is killed with the processes it
  started (its own session).
  """
  with tempfile.TemporaryDirectory() as scratch:
    request = os.path.join(scratch, "request.json")
    error_path = os.path.join(scratch, "error.txt")
    with open(request, "w") as out:
      json.dump({
          "input_dict": artifact_utils.jsonify_artifact_dict(input_dict),
          "output_dict": artifact_utils.jsonify_artifact_dict(output_dict),
          "exec_properties": exec_properties,
          "error_path": error_path,
      }, out)
    child = subprocess.Popen([sys.executable, "-m", trainer_child.__name__,
                              request],
                             start_new_session=True)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    timed_out = False
    while True:
      pid, status, usage = os.wait4(child.pid,
                                    os.WNOHANG if deadline else 0)
      if pid:
        break
      if time.monotonic() > deadline:
        os.killpg(child.pid, signal.SIGKILL)
        timed_out, deadline = True, None
      else:
        time.sleep(_POLL_S)
    error = (open(error_path).read().strip()
             if os.path.exists(error_path) else "")
  # Linux reports ru_maxrss in KiB.
  return ChildRun(exit_status=os.waitstatus_to_exitcode(status), error=error,
                  peak_rss_mib=usage.ru_maxrss / 1024, timed_out=timed_out)


class ProcessTrainerExecutor(base_executor.BaseExecutor):
  """Runs the Trainer's executor in a child process; fails as it fails."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:  # pylint: disable=invalid-name
    child = run_in_child(input_dict, output_dict, exec_properties)
    if child.exit_status != 0:
      raise RuntimeError(
          "the Trainer's process failed: "
          f"{exit_reason(child.exit_status, child.error)} (peak RSS "
          f"{child.peak_rss_mib:,.0f} MiB)")


class ProcessTrainer(tfx.components.Trainer):
  """The Trainer, run in a child process whose memory ends with it."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ProcessTrainerExecutor)

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    # Its node is still "Trainer" (run summaries, resumes and compiled
    # specs name it), unless the pipeline names it otherwise.
    self.with_id("Trainer")
