"""Beam's own Python job service and an external SDK worker pool, on localhost.

A run whose Beam args name them (`beam_args(...)`) goes through Beam's
portability layer as on a Flink, Spark or Dataflow cluster: the job service
runs each Beam step as a job, and the SDK workers that execute it are
processes the pool starts, never the launching one. Started and stopped by
the test that needs them:

  with start(log_dir, env) as (job_endpoint, worker_pool):
    run with beam_args(job_endpoint, worker_pool)
    job_states_by_step(job_endpoint)   # {"Transform": ["DONE"], ...}

The pool starts each worker through `boot` (this module run as a program),
which does what an SDK container's boot does before it starts
`sdk_worker_main`: it fetches the job's pipeline options from the provision
service. Beam's Python pool alone starts a bare `SdkHarness` without them,
and Beam's S3 file system then refuses to open any file ("Must provide one
of client or options").
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import pathlib
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Mapping, Sequence

import grpc
from apache_beam.portability.api import beam_job_api_pb2
from apache_beam.portability.api import beam_job_api_pb2_grpc
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.portability.api import beam_provision_api_pb2_grpc
from apache_beam.portability.api import endpoints_pb2
from google.protobuf import json_format
from google.protobuf import text_format

from serving import testing_grpc
from tfx_pipeline import config as config_lib

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
_MODULE = "tests.beam_services"


def _wait_for_port(port: int, process: subprocess.Popen,
                   log_path: pathlib.Path) -> None:
  deadline = time.monotonic() + _SERVICE_START_TIMEOUT_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f"{process.args} exited: {log_path.read_text()}")
    with socket.socket() as probe:
      if probe.connect_ex(("localhost", port)) == 0:
        return
    time.sleep(0.2)
  raise TimeoutError(f"{process.args} is not listening on {port}")


def _boot_executable(directory: pathlib.Path) -> pathlib.Path:
  """A program the pool runs per worker (it takes no interpreter): this
  module's `boot`, with this interpreter."""
  path = directory / "sdk_boot"
  path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {_MODULE} "$@"\n')
  path.chmod(path.stat().st_mode | stat.S_IXUSR)
  return path


@contextlib.contextmanager
def start(log_dir: pathlib.Path, env: Mapping[str, str]
          ) -> Iterator[tuple[str, str]]:
  """Starts the job service and the worker pool; yields their endpoints.

  Args:
    log_dir: where each service writes its log.
    env: their environment (e.g. an object store's credentials, which the
      SDK workers then read); the project is made importable on top of it,
      as a cluster's worker image would have it.

  Yields:
    `(job endpoint, worker pool endpoint)`, both `localhost:<port>`.
  """
  env = dict(env,
             PATH=os.pathsep.join([os.path.dirname(sys.executable),
                                   env.get("PATH", "")]),
             PYTHONPATH=os.pathsep.join([str(config_lib.REPO_ROOT),
                                         env.get("PYTHONPATH", "")]),
             TF_USE_LEGACY_KERAS="1")
  services = {
      "job_service": ["apache_beam.runners.portability.local_job_service_main",
                      "--port={port}"],
      "worker_pool": ["apache_beam.runners.worker.worker_pool_main",
                      "--service_port={port}",
                      f"--container_executable={_boot_executable(log_dir)}"],
  }
  processes, endpoints = [], {}
  try:
    for name, (module, *flags) in services.items():
      port = testing_grpc.free_port()
      log_path = log_dir / f"{name}.log"
      with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", module,
             *(flag.format(port=port) for flag in flags)], env=env,
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


def beam_args(job_endpoint: str, worker_pool: str) -> list[str]:
  """A run's Beam args for the PortableRunner on these services."""
  return ["--runner=PortableRunner", f"--job_endpoint={job_endpoint}",
          "--environment_type=EXTERNAL", f"--environment_config={worker_pool}",
          f"--job_server_timeout={JOB_SERVER_TIMEOUT_S}"]


def job_states_by_step(job_endpoint: str) -> dict[str, list[str]]:
  """Step -> final states of the jobs the job service ran for it.

  Every job the job service records is named "job", so each is told apart
  by its pipeline: the top-level transform that only one step's Beam job
  applies (`BEAM_STEP_MARKERS`). A job whose pipeline applies no step's
  marker, or several, is listed under its top-level transform labels
  instead, so that it shows in a failure.
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


def _descriptor(url: str) -> str:
  return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))


def boot(argv: Sequence[str]) -> None:
  """One SDK worker, started as an SDK container's boot starts it: the job's
  pipeline options from the provision service, then `sdk_worker_main`."""
  parser = argparse.ArgumentParser()
  for flag in ("id", "logging_endpoint", "artifact_endpoint",
               "provision_endpoint", "control_endpoint"):
    parser.add_argument(f"--{flag}", required=True)
  args, _ = parser.parse_known_args(argv)
  with grpc.insecure_channel(args.provision_endpoint) as channel:
    info = beam_provision_api_pb2_grpc.ProvisionServiceStub(
        channel).GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(),
            metadata=[("worker_id", args.id)], timeout=60).info
  os.environ.update({
      "WORKER_ID": args.id,
      "PIPELINE_OPTIONS": json_format.MessageToJson(info.pipeline_options),
      "CONTROL_API_SERVICE_DESCRIPTOR": _descriptor(args.control_endpoint),
      "LOGGING_API_SERVICE_DESCRIPTOR": _descriptor(args.logging_endpoint),
      "SEMI_PERSISTENT_DIRECTORY": tempfile.mkdtemp(prefix="beam_sdk_"),
  })
  # Imported here: the services' launcher needs none of the worker.
  from apache_beam.runners.worker import sdk_worker_main  # pylint: disable=import-outside-toplevel
  sdk_worker_main.main([])


if __name__ == "__main__":
  boot(sys.argv[1:])
