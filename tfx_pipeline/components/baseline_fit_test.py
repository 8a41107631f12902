"""Tests for baseline_fit: a baseline's failure is recorded, never raised.

Each Trainer test runs the real executor, whose child process imports the
`run_fn` below from this module: one that fits, one that raises and one that
dies of a segfault in native code (a read of address 0 through ctypes).
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

from tfx.components.evaluator import constants as evaluator_constants
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs

from models import families
from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import process_trainer_test

_MODULE = "tfx_pipeline.components.baseline_fit_test"
_SLEEPER_PID_FILE = "VREC_TEST_SLEEPER_PID_FILE"


def fitting_run_fn(fn_args):
  os.makedirs(fn_args.serving_model_dir)


def raising_run_fn(fn_args):
  del fn_args
  raise ValueError("EASE^R needs 7.0 GB, above memory_budget_gb=2.0")


def deadline_recording_run_fn(fn_args):
  os.makedirs(fn_args.serving_model_dir)
  with open(os.path.join(fn_args.serving_model_dir, "deadline"), "w") as out:
    out.write(repr(fn_args.custom_config.get(families.FIT_DEADLINE_KEY)))


def segfaulting_run_fn(fn_args):
  del fn_args
  ctypes.string_at(0)


def endless_run_fn(fn_args):
  del fn_args
  # A grandchild too, as a Beam or BLAS worker would be: it must end with
  # the fit. Its pid tells the test that the fit got this far.
  sleeper = subprocess.Popen([sys.executable, "-c",
                              "import time; time.sleep(600)"])
  with open(os.environ[_SLEEPER_PID_FILE], "w") as out:
    out.write(str(sleeper.pid))
  time.sleep(600)


def _train(tmp_path, run_fn: str, **custom_config):
  """Runs the contained Trainer executor; returns the model's URI."""
  model_uri = tmp_path / "model"
  request = process_trainer_test.trainer_request(
      tmp_path, f"{_MODULE}.{run_fn}",
      {families.FAMILY_KEY: "ease", **custom_config})
  baseline_fit.ContainedTrainerExecutor().Do(*request)
  return str(model_uri)


def test_a_baseline_that_fits_leaves_no_failure(tmp_path):
  model_uri = _train(tmp_path, "fitting_run_fn")
  assert os.path.isdir(os.path.join(model_uri, "Format-Serving"))
  assert baseline_fit.read_failure(model_uri) is None


def test_the_fit_is_told_when_its_budget_stops_it(tmp_path):
  budget_s = 600
  started = time.time()
  model_uri = _train(tmp_path, "deadline_recording_run_fn",
                     **{families.FIT_TIMEOUT_KEY: budget_s})
  with open(os.path.join(model_uri, "Format-Serving", "deadline")) as record:
    deadline = float(record.read())
  assert started + budget_s <= deadline <= time.time() + budget_s


def test_a_fit_without_a_budget_has_no_deadline(tmp_path):
  model_uri = _train(tmp_path, "deadline_recording_run_fn")
  with open(os.path.join(model_uri, "Format-Serving", "deadline")) as record:
    assert record.read() == "None"


def test_a_baseline_that_raises_is_recorded_with_its_reason(tmp_path):
  failure = baseline_fit.read_failure(_train(tmp_path, "raising_run_fn"))
  assert failure.family == "ease"
  assert failure.exit_status == 1
  assert failure.reason == (
      "ValueError: EASE^R needs 7.0 GB, above memory_budget_gb=2.0")
  assert "--set 'baselines.hparams={\"ease\": {...}}'" in failure.in_words()
  assert failure.peak_rss_mib > 0


def test_a_baseline_that_segfaults_leaves_this_process_standing(tmp_path):
  failure = baseline_fit.read_failure(_train(tmp_path, "segfaulting_run_fn"))
  assert failure.exit_status == -signal.SIGSEGV
  assert failure.reason == "the fit process died of SIGSEGV in native code"


def test_a_baseline_past_its_time_budget_is_stopped_with_its_processes(
    tmp_path, monkeypatch):
  pid_file = tmp_path / "sleeper.pid"
  monkeypatch.setenv(_SLEEPER_PID_FILE, str(pid_file))
  # Long enough for the child to import TensorFlow and reach the run_fn.
  budget_s = 45
  failure = baseline_fit.read_failure(_train(
      tmp_path, "endless_run_fn", **{families.FIT_TIMEOUT_KEY: budget_s}))
  assert failure.exit_status == -signal.SIGKILL
  assert failure.reason == (f"the fit took longer than its budget, "
                            f"baselines.fit_timeout_s={budget_s} s, and was "
                            "stopped")
  assert "--set baselines.fit_timeout_s=SECONDS" in failure.in_words()
  assert not _running(int(pid_file.read_text()))


def _running(pid: int) -> bool:
  """Whether `pid` is a live process: a killed orphan may stay a zombie
  where the container's init does not reap it."""
  try:
    with open(f"/proc/{pid}/stat") as stat:
      return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
  except FileNotFoundError:
    return False


def test_the_evaluator_passes_the_failure_on_and_does_not_bless(tmp_path):
  failure = baseline_fit.FitFailure(
      family="ease", reason="the fit process died of SIGSEGV in native code",
      exit_status=-11, peak_rss_mib=4096.0, how_to_change="")
  baseline_fit.write_failure(str(tmp_path / "model"), failure)
  artifact = process_trainer_test.artifact
  blessing = artifact(standard_artifacts.ModelBlessing, tmp_path / "blessing")
  baseline_fit.FitAwareEvaluatorExecutor().Do(
      {specs.MODEL_KEY: [artifact(standard_artifacts.Model, tmp_path / "model")]},
      {specs.EVALUATION_KEY: [artifact(standard_artifacts.ModelEvaluation,
                                       tmp_path / "evaluation")],
       specs.BLESSING_KEY: [blessing]}, {})
  assert baseline_fit.read_failure(str(tmp_path / "evaluation")) == failure
  assert blessing.get_int_custom_property(
      evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 0
  assert os.listdir(tmp_path / "blessing") == [
      evaluator_constants.NOT_BLESSED_FILE_NAME]
