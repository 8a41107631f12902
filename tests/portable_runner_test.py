"""Every Beam step of the pipeline, with its SDK workers in other processes.

One run on a small MovieLens sample through Beam's portability layer,
ending with the pushed model answering a gRPC request: `PortableRunner`
against Beam's own Python job service, with an external pool of SDK worker
processes (both started and stopped here); the job service must have run one
job per Beam step (ExampleGen, StatisticsGen, Transform, Evaluator,
ScannIndexGen). It catches what the in-memory DirectRunner forgives: state
that does not pickle, side inputs that do not serialise, a DoFn that reads a
file only the launching process has. The DirectRunner's multi-process mode
runs in `tests/object_store_e2e_test.py`, against a bucket.

Every job the job service records is named "job", so each is told apart by
its pipeline: the top-level transform that only one step's Beam job applies.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time

import grpc
import pytest
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.portability.api import beam_job_api_pb2_grpc

from serving import client
from serving import server
from tests import pipeline_fixtures
from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary

# The run takes minutes on two cores (every step starts its own SDK worker
# processes); on a loaded machine more than the suite's 900 s default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

# Few users and one epoch: what is under test is where the steps run.
SAMPLE_USERS = 60
# Step -> a top-level transform label that only its Beam job applies
# (interaction_example_beam, TFX's StatisticsGen, Transform and Evaluator
# executors, index_builder).
BEAM_STEP_MARKERS = {
    "InteractionExampleGen": "UserSequence",
    "StatisticsGen": "GenerateStatistics[train]",
    "Transform": "Analyze",
    "Evaluator": "ExtractEvaluateAndWriteResults",
    "ScannIndexGen": "BuildAndWriteIndex",
}
_SERVICE_START_TIMEOUT_S = 60
# The PortableRunner uses its job server timeout (default 60 s) as the
# deadline of the job's state stream, so a longer step fails with
# DEADLINE_EXCEEDED: it has to outlast the slowest step.
JOB_SERVER_TIMEOUT_S = 1800


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log_path) -> None:
  deadline = time.monotonic() + _SERVICE_START_TIMEOUT_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f"{process.args} exited: {log_path.read_text()}")
    with socket.socket() as probe:
      if probe.connect_ex(("localhost", port)) == 0:
        return
    time.sleep(0.2)
  raise TimeoutError(f"{process.args} is not listening on {port}")


@pytest.fixture(scope="module")
def beam_services(tmp_path_factory):
  """(job endpoint, worker pool endpoint) of a job service and worker pool."""
  log_dir = tmp_path_factory.mktemp("beam_services")
  # The pool starts each worker as `python -c ...`: this interpreter, with
  # the project importable, as a cluster's worker image would have it.
  env = dict(os.environ,
             PATH=os.pathsep.join([os.path.dirname(sys.executable),
                                   os.environ["PATH"]]),
             PYTHONPATH=os.pathsep.join(
                 [str(config_lib.REPO_ROOT),
                  os.environ.get("PYTHONPATH", "")]),
             TF_USE_LEGACY_KERAS="1")
  services = {
      "job_service": ("apache_beam.runners.portability.local_job_service_main",
                      "--port"),
      "worker_pool": ("apache_beam.runners.worker.worker_pool_main",
                      "--service_port"),
  }
  processes, endpoints = [], {}
  try:
    for name, (module, port_flag) in services.items():
      port = _free_port()
      log_path = log_dir / f"{name}.log"
      with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", module, f"{port_flag}={port}"], env=env,
            stdout=log, stderr=subprocess.STDOUT)
      processes.append(process)
      _wait_for_port(port, process, log_path)
      endpoints[name] = f"localhost:{port}"
    yield endpoints["job_service"], endpoints["worker_pool"]
  finally:
    for process in processes:
      process.terminate()
    for process in processes:
      process.wait(timeout=30)


def _job_states_by_step(job_endpoint: str) -> dict[str, list[str]]:
  """Step -> final states of the jobs the job service ran for it.

  A job whose pipeline applies no step's marker, or several, is listed under
  its top-level transform labels instead, so that it shows in a failure.
  """
  by_step = collections.defaultdict(list)
  with grpc.insecure_channel(job_endpoint) as channel:
    job_service = beam_job_api_pb2_grpc.JobServiceStub(channel)
    for job in job_service.GetJobs(beam_job_api_pb2.GetJobsRequest(),
                                   timeout=30).job_info:
      pipeline = job_service.GetPipeline(
          beam_job_api_pb2.GetJobPipelineRequest(job_id=job.job_id),
          timeout=30).pipeline
      labels = {transform.unique_name.split("/")[0]
                for transform in pipeline.components.transforms.values()}
      steps = [step for step, marker in BEAM_STEP_MARKERS.items()
               if marker in labels]
      step = (steps[0] if len(steps) == 1
              else "unidentified job: " + ", ".join(sorted(labels)))
      by_step[step].append(beam_job_api_pb2.JobState.Enum.Name(job.state))
  return dict(by_step)


def _run_pipeline_and_ask_the_pushed_model(tmp_path_factory,
                                           beam_args: list[str]):
  """Runs a tiny pipeline with `beam_args` and asks its served model."""
  dataset_dir = pipeline_fixtures.write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"), n_users=SAMPLE_USERS)
  config = pipeline_fixtures.sample_config(
      tmp_path_factory.mktemp("workspace"), dataset_dir, beam_args=beam_args,
      baselines=config_lib.BaselinesConfig(families=[]),
      gate=config_lib.GateConfig(lower_bound=0.0))
  config.hparams = {"epochs": 1, "batch_size": 128}
  local_runner.run(config)

  summary = run_summary.summarize(config.metadata_path)
  states = {run.component: run.state for run in summary.components}
  assert set(BEAM_STEP_MARKERS) <= set(states)
  assert all(state == "complete" for state in states.values()), states
  assert summary.blessed is True and summary.pushed_dir

  handle = server.serve(server.ServerConfig(
      model_base_path=config.serving_dir, port=0))
  try:
    client.wait_until_available(handle.address, config.model_name)
    answer = client.recommend(handle.address, config.model_name, user_id="1",
                              history=["50", "181"], timestamp=881250949, k=5)
  finally:
    handle.stop()
  assert len(answer.item_ids) == 5
  assert not {"50", "181"} & set(answer.item_ids)
  return config


def test_every_beam_step_runs_on_the_portable_runner(beam_services,
                                                     tmp_path_factory):
  job_endpoint, worker_pool = beam_services
  config = _run_pipeline_and_ask_the_pushed_model(tmp_path_factory, [
      "--runner=PortableRunner", f"--job_endpoint={job_endpoint}",
      "--environment_type=EXTERNAL", f"--environment_config={worker_pool}",
      f"--job_server_timeout={JOB_SERVER_TIMEOUT_S}"])

  # The markers name every step that the run's pipeline gives to Beam.
  assert set(pipeline_fixtures.beam_args_by_node(config)) == set(
      BEAM_STEP_MARKERS)
  # One finished job per Beam step: none ran outside the job service, none
  # ran twice, and no other job ran.
  assert _job_states_by_step(job_endpoint) == {
      step: ["DONE"] for step in BEAM_STEP_MARKERS}
