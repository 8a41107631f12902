"""Classical baselines that never fail the run: fitted in a child process.

A baseline is there to be compared with, so its failure must not cost the
user the model. `BaselineTrainer` is the TFX Trainer with an executor that
runs the Trainer's own executor (`GenericExecutor`, the family's `run_fn`)
in a fresh Python process: a Python exception, a crash in native code
(a segfault in BLAS), the kernel's out-of-memory killer or the fit's time
budget (`FIT_TIMEOUT_KEY` of the custom config, from
`baselines.fit_timeout_s`) ends that process, not the pipeline's. The failure is then written beside where the model would
be, as `fit_failure.json` (`FitFailure`: the family, the reason, the exit
status, the child's peak memory and which flag changes the setting), and the
Trainer completes without a model.

`BaselineEvaluator` is the TFX Evaluator with an executor that, for a
baseline that did not fit, copies the failure into its evaluation output
instead of running TFMA, and writes a NOT_BLESSED blessing; a fitted
baseline is evaluated as before. The run summary, the HTML report and
BaselineGate (which refuses to bless against a baseline that did not fit)
read the failure from there with `read_failure`.
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

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs

from models import families

FIT_FAILURE_FILE = "fit_failure.json"
# The custom config's key of the seconds a fit may take; absent or 0: no
# limit.
FIT_TIMEOUT_KEY = "fit_timeout_s"
# How often the parent looks whether a timed child has ended.
_POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class FitFailure:
  """Why a baseline has no model.

  Attributes:
    family: the baseline's model family.
    reason: what ended the fit, in words.
    exit_status: the child's exit code, or minus the signal that killed it.
    peak_rss_mib: the child's peak resident memory.
    how_to_change: the flags that change this baseline.
  """
  family: str
  reason: str
  exit_status: int
  peak_rss_mib: float
  how_to_change: str

  def in_words(self) -> str:
    return (f"{self.reason} (peak RSS {self.peak_rss_mib:,.0f} MiB). "
            f"{self.how_to_change}")


def how_to_change(family: str) -> str:
  """The flags that really reach a baseline's settings."""
  return (f"A baseline's hyperparameters are set with --set "
          f"'baselines.hparams={{\"{family}\": {{...}}}}' (--hparam sets the "
          f"model's only), its time budget with --set "
          f"baselines.fit_timeout_s=SECONDS; --set 'baselines.families=[...]' "
          f"without \"{family}\" drops it.")


def write_failure(directory: str, failure: FitFailure) -> None:
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(os.path.join(directory, FIT_FAILURE_FILE), "w") as out:
    json.dump(dataclasses.asdict(failure), out, indent=1)


def read_failure(directory: str) -> Optional[FitFailure]:
  """The failure recorded in a baseline's model or evaluation, if any."""
  path = os.path.join(directory, FIT_FAILURE_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as record:
    return FitFailure(**json.load(record))


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


def _custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
  custom_config = exec_properties.get(specs.CUSTOM_CONFIG_KEY) or "{}"
  if isinstance(custom_config, str):
    custom_config = json.loads(custom_config)
  return custom_config


def _custom_family(exec_properties: dict[str, Any]) -> str:
  return _custom_config(exec_properties).get(families.FAMILY_KEY, "")


def _run_child(command: list[str], timeout_s: float | None = None):
  """(exit status, resource usage, timed out) of a child run to its end.

  `os.wait4` rather than `Popen.wait`: it also returns the child's own peak
  memory, which the pipeline process's rusage would mix with its other
  children's. A child past `timeout_s` is killed with the processes it
  started (its own session).
  """
  child = subprocess.Popen(command, start_new_session=True)
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
  child.returncode = os.waitstatus_to_exitcode(status)
  return child.returncode, usage, timed_out


class ContainedTrainerExecutor(base_executor.BaseExecutor):
  """Runs the Trainer's executor in a child process; records its failure."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:  # pylint: disable=invalid-name
    model_uri = artifact_utils.get_single_uri(output_dict[specs.MODEL_KEY])
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
      timeout_s = _custom_config(exec_properties).get(FIT_TIMEOUT_KEY)
      exit_status, usage, timed_out = _run_child(
          [sys.executable, "-m", __name__, request], timeout_s)
      error = (open(error_path).read().strip()
               if os.path.exists(error_path) else "")
    if exit_status == 0:
      return
    family = _custom_family(exec_properties)
    failure = FitFailure(
        family=family,
        reason=exit_reason(exit_status, error,
                           timeout_s if timed_out else None),
        exit_status=exit_status,
        # Linux reports ru_maxrss in KiB.
        peak_rss_mib=usage.ru_maxrss / 1024,
        how_to_change=how_to_change(family))
    write_failure(model_uri, failure)
    print(f"BaselineTrainer: {family} did not fit: {failure.in_words()}",
          file=sys.stderr,
          flush=True)


class FitAwareEvaluatorExecutor(evaluator_executor.Executor):
  """The Evaluator's executor, passing on a baseline that did not fit."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:  # pylint: disable=invalid-name
    failure = read_failure(
        artifact_utils.get_single_uri(input_dict[specs.MODEL_KEY]))
    if failure is None:
      super().Do(input_dict, output_dict, exec_properties)
      return
    write_failure(
        artifact_utils.get_single_uri(output_dict[specs.EVALUATION_KEY]),
        failure)
    blessing = artifact_utils.get_single_instance(
        output_dict[specs.BLESSING_KEY])
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(
        blessing.uri, evaluator_constants.NOT_BLESSED_FILE_NAME), "w") as out:
      out.write("")
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.NOT_BLESSED_VALUE)


class BaselineTrainer(tfx.components.Trainer):
  """The Trainer, with the baseline's fit contained in a child process."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ContainedTrainerExecutor)


class BaselineEvaluator(tfx.components.Evaluator):
  """The Evaluator, recording a baseline that did not fit instead of failing."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(FitAwareEvaluatorExecutor)


def _run_request(request_path: str) -> None:
  """The child: runs the Trainer's executor on the parent's request."""
  with open(request_path) as request_file:
    request = json.load(request_file)
  try:
    trainer_executor.GenericExecutor().Do(artifact_utils.parse_artifact_dict(request["input_dict"]),
                artifact_utils.parse_artifact_dict(request["output_dict"]),
                request["exec_properties"])
  except Exception as error:  # pylint: disable=broad-except
    with open(request["error_path"], "w") as out:
      out.write(f"{type(error).__name__}: {error}")
    raise


if __name__ == "__main__":
  _run_request(sys.argv[1])
