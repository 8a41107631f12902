"""Classical baselines that never fail the run: fitted in a child process.

A baseline is there to be compared with, so its failure must not cost the
user the model. `BaselineTrainer` is the TFX Trainer with an executor that
runs the Trainer's own executor (`GenericExecutor`, the family's `run_fn`)
in a fresh Python process (`process_trainer.run_in_child`): a Python exception, a crash in native code
(a segfault in BLAS), the kernel's out-of-memory killer or the fit's time
budget (`families.FIT_TIMEOUT_KEY` of the custom config, from
`baselines.fit_timeout_s`) ends that process, not the pipeline's. The child
is told when it will be stopped (`families.FIT_DEADLINE_KEY`), so a fit can
skip work the budget cannot hold (`models.item_item.trainer`). The failure is then written beside where the model would
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
import sys
import time
from typing import Any, Optional

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs

from models import families
from tfx_pipeline.components import process_trainer

FIT_FAILURE_FILE = "fit_failure.json"


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


def _custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
  custom_config = exec_properties.get(specs.CUSTOM_CONFIG_KEY) or "{}"
  if isinstance(custom_config, str):
    custom_config = json.loads(custom_config)
  return custom_config


def _custom_family(exec_properties: dict[str, Any]) -> str:
  return _custom_config(exec_properties).get(families.FAMILY_KEY, "")


def _with_deadline(exec_properties: dict[str, Any],
                   deadline_unix_s: float) -> dict[str, Any]:
  """`exec_properties` whose custom config says when the fit is stopped."""
  custom_config = {**_custom_config(exec_properties),
                   families.FIT_DEADLINE_KEY: deadline_unix_s}
  return {**exec_properties, specs.CUSTOM_CONFIG_KEY: json.dumps(custom_config)}


class ContainedTrainerExecutor(base_executor.BaseExecutor):
  """Runs the Trainer's executor in a child process; records its failure."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:  # pylint: disable=invalid-name
    model_uri = artifact_utils.get_single_uri(output_dict[specs.MODEL_KEY])
    timeout_s = _custom_config(exec_properties).get(families.FIT_TIMEOUT_KEY)
    if timeout_s:
      exec_properties = _with_deadline(exec_properties, time.time() + timeout_s)
    child = process_trainer.run_in_child(input_dict, output_dict,
                                         exec_properties, timeout_s)
    if child.exit_status == 0:
      return
    family = _custom_family(exec_properties)
    failure = FitFailure(
        family=family,
        reason=process_trainer.exit_reason(
            child.exit_status, child.error,
            timeout_s if child.timed_out else None),
        exit_status=child.exit_status,
        peak_rss_mib=child.peak_rss_mib,
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
