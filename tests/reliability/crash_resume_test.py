"""A pipeline killed during training resumes from the MLMD cache.

The CLI runs in its own process group and is SIGKILLed (no cleanup, as on a
lost machine) once the Trainer has started; the same command then runs again.
Everything before the Trainer must come from the cache, the Trainer must run
afresh (its killed execution left no usable model), and the pushed model must
serve. Training does not need many epochs to be killed mid-way: before its
first step the Trainer spends tens of seconds reading the Transform output
and tracing, so the default test hyperparameters keep the test short.
"""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from models import serving_names
from tests import pipeline_fixtures
from tfx_pipeline import config as config_lib
from tfx_pipeline.report import run_summary

pytestmark = pytest.mark.e2e

PIPELINE_NAME = "crash-resume"
# Two idle cores: ~80 s until the Trainer starts, ~150 s for the re-run. When
# other jobs share the cores both take longer, hence the margin.
TEST_BUDGET_S = 360
# The Trainer registers its execution in MLMD before its output directories
# appear; the pause only makes sure it is well under way.
PAUSE_AFTER_TRAINER_STARTS_S = 2
BEFORE_TRAINER = ("InteractionExampleGen", "StatisticsGen", "ImportSchemaGen",
                  "ExampleValidator", "AnomaliesGate", "Transform")
AFTER_TRAINER = ("Trainer", "Evaluator", "ScannIndexGen", "Pusher")


def _command(dataset_dir: pathlib.Path, workspace: pathlib.Path) -> list[str]:
  hparams = [arg for key, value in pipeline_fixtures.FAST_HPARAMS.items()
             for arg in ("--hparam", f"{key}={value}")]
  # The gate is not under test: any trained model must be pushed.
  return [sys.executable, "-m", "tfx_pipeline", "run", "--dataset", "contract",
          "--dataset-dir", str(dataset_dir), "--workspace", str(workspace),
          "--pipeline-name", PIPELINE_NAME, "--no-demo",
          "--set", "gate.lower_bound=0", "--set", "baselines.families=[]",
          *hparams]


def _start(command: list[str], log_path: pathlib.Path) -> subprocess.Popen:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONWARNINGS="ignore::FutureWarning,ignore::DeprecationWarning")
  with open(log_path, "wb") as log:
    # A session of its own, so the kill reaches every process it starts.
    return subprocess.Popen(command, cwd=config_lib.REPO_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _tail(log_path: pathlib.Path, lines: int = 30) -> str:
  return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_for_trainer(process: subprocess.Popen, trainer_dir: pathlib.Path,
                      deadline: float, log_path: pathlib.Path) -> None:
  while not (trainer_dir / "model").is_dir():
    assert process.poll() is None, (
        f"the run ended (exit {process.returncode}) before the Trainer "
        f"started:\n{_tail(log_path)}")
    assert time.monotonic() < deadline, (
        f"the Trainer did not start in time:\n{_tail(log_path)}")
    time.sleep(0.5)
  time.sleep(PAUSE_AFTER_TRAINER_STARTS_S)


def _kill_group(process: subprocess.Popen) -> None:
  try:
    os.killpg(process.pid, signal.SIGKILL)
  except ProcessLookupError:  # The whole group has already exited.
    pass
  process.wait(timeout=30)


def _states(summary: run_summary.RunSummary) -> dict[str, str]:
  return {run.component: run.state for run in summary.components}


def test_killed_run_resumes_from_the_cache_and_pushes(tmp_path):
  deadline = time.monotonic() + TEST_BUDGET_S
  dataset_dir = pipeline_fixtures.write_movielens_sample(tmp_path / "data",
                                                         n_users=60)
  workspace = tmp_path / "workspace"
  config = config_lib.PipelineConfig(
      pipeline_name=PIPELINE_NAME, dataset="contract",
      dataset_dir=str(dataset_dir), workspace=str(workspace))
  command = _command(dataset_dir, workspace)
  trainer_dir = pathlib.Path(config.pipeline_root) / "Trainer"

  first = _start(command, tmp_path / "first.log")
  try:
    _wait_for_trainer(first, trainer_dir, deadline, tmp_path / "first.log")
  finally:
    _kill_group(first)
  assert first.returncode == -signal.SIGKILL
  killed = run_summary.summarize(config.metadata_path)
  assert _states(killed)["Trainer"] == "running", _states(killed)
  assert killed.pushed_dir is None
  killed_models = set(os.listdir(trainer_dir / "model"))

  second = _start(command, tmp_path / "second.log")
  try:
    second.wait(timeout=max(1.0, deadline - time.monotonic()))
  except subprocess.TimeoutExpired:
    _kill_group(second)
    pytest.fail(f"the re-run took over {TEST_BUDGET_S} s in all:\n"
                f"{_tail(tmp_path / 'second.log')}")
  assert second.returncode == 0, _tail(tmp_path / "second.log")

  resumed = run_summary.summarize(config.metadata_path)
  assert resumed.run_id != killed.run_id
  states = _states(resumed)
  assert {name: states[name] for name in BEFORE_TRAINER} == dict.fromkeys(
      BEFORE_TRAINER, "cached"), states
  assert {name: states[name] for name in AFTER_TRAINER} == dict.fromkeys(
      AFTER_TRAINER, "complete"), states
  assert os.path.basename(resumed.artifacts["Trainer.model"]) not in (
      killed_models), "the killed Trainer's output must not be reused"

  pushed = tf.saved_model.load(resumed.pushed_dir)
  top10 = pushed.signatures[serving_names.retrieve_top(10)](
      user_id=tf.constant(["1"]), history_item_ids=tf.constant([["50", ""]]),
      timestamp=tf.constant([893286638], tf.int64))
  assert top10[serving_names.ITEM_IDS].shape == (1, 10)
