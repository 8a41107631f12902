"""Tests for the Trainer run in a child process.

The child imports the `run_fn`s below from this module.
"""

import atexit
import json
import os
import signal

import numpy as np
import pytest
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from models import families
from tfx_pipeline.components import process_trainer

_MODULE = "tfx_pipeline.components.process_trainer_test"
_ALLOCATED_MIB = 600


# What a run_fn leaves allocated when it returns, as TensorFlow keeps its
# buffers and the allocator its arenas.
_KEPT = []


def allocating_run_fn(fn_args):
  _KEPT.append(np.ones(_ALLOCATED_MIB * 2**20, np.uint8))
  os.makedirs(fn_args.serving_model_dir)
  with open(os.path.join(fn_args.serving_model_dir, "model"), "w") as out:
    out.write("model")


def aborting_at_exit_run_fn(fn_args):
  """Writes the model, then aborts at interpreter teardown, as the S3
  filesystem plugin's static destructors do."""
  allocating_run_fn(fn_args)
  atexit.register(os.abort)


def raising_run_fn(fn_args):
  del fn_args
  raise ValueError("unknown hyperparameter 'epoch'")


def artifact(artifact_type, uri, **properties):
  artifact = artifact_type()
  artifact.uri = str(uri)
  for name, value in properties.items():
    setattr(artifact, name, value)
  return artifact


def trainer_request(directory, run_fn: str, custom_config: dict):
  """A Trainer executor's `(input_dict, output_dict, exec_properties)`:
  examples, model and model run under `directory`, `run_fn` a function of
  a test module the child can import."""
  return (
      {specs.EXAMPLES_KEY: [artifact(standard_artifacts.Examples,
                                      directory / "examples",
                                      split_names='["train", "eval"]')]},
      {specs.MODEL_KEY: [artifact(standard_artifacts.Model,
                                   directory / "model")],
       specs.MODEL_RUN_KEY: [artifact(standard_artifacts.ModelRun,
                                       directory / "model_run")]},
      {specs.TRAIN_ARGS_KEY: "{}", specs.EVAL_ARGS_KEY: "{}",
       specs.RUN_FN_KEY: run_fn,
       specs.CUSTOM_CONFIG_KEY: json.dumps(custom_config)})


def _train(tmp_path, run_fn: str):
  process_trainer.ProcessTrainerExecutor().Do(*trainer_request(
      tmp_path, f"{_MODULE}.{run_fn}", {families.FAMILY_KEY: "sasrec"}))


def _resident_mib() -> float:
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * 4096 / 2**20


def test_the_model_is_written_and_the_memory_ends_with_the_child(tmp_path):
  before = _resident_mib()
  _train(tmp_path, "allocating_run_fn")
  assert (tmp_path / "model" / "Format-Serving" / "model").read_text() == (
      "model")
  # The run_fn touched 600 MiB in the child; the pipeline's process kept
  # none of it (run in process, it would hold them).
  assert _resident_mib() - before < _ALLOCATED_MIB / 2


def test_the_child_s_peak_memory_is_its_own(tmp_path):
  child = process_trainer.run_in_child(*trainer_request(
      tmp_path, f"{_MODULE}.allocating_run_fn", {}))
  assert child.exit_status == 0 and not child.timed_out and not child.error
  assert child.peak_rss_mib > _ALLOCATED_MIB


def test_a_crash_in_teardown_after_the_work_does_not_fail_the_trainer(
    tmp_path):
  _train(tmp_path, "aborting_at_exit_run_fn")
  assert (tmp_path / "model" / "Format-Serving" / "model").read_text() == (
      "model")


def test_a_failing_trainer_fails_the_component_with_the_child_s_error(
    tmp_path):
  with pytest.raises(RuntimeError, match="the Trainer's process failed: "
                     "ValueError: unknown hyperparameter 'epoch'"):
    _train(tmp_path, "raising_run_fn")


@pytest.mark.parametrize("exit_status, error, reason", [
    (-signal.SIGKILL, "", "killed by SIGKILL, most likely by the kernel's "
     "out-of-memory killer"),
    (-signal.SIGSEGV, "", "the fit process died of SIGSEGV in native code"),
    (3, "", "the fit process exited with status 3"),
    (1, "MemoryError: ", "MemoryError: "),
])
def test_exit_reasons(exit_status, error, reason):
  assert process_trainer.exit_reason(exit_status, error) == reason
