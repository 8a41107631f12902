"""The pipeline end to end in a bucket of a real S3 server (moto, started
here), every Beam step on Beam's portability layer.

One `vrec run` reads the dataset from the bucket and writes the pipeline root
(Beam outputs, TF and TFX artifacts, the ScaNN index, the HTML report) and
the pushed model there, with MLMD in a local SQLite file. Its Beam steps run
on the `PortableRunner` against Beam's own Python job service, with an
external pool of SDK worker processes (`tests.beam_services`, both started
and stopped here), as on a Flink, Spark or Dataflow cluster: the job service
must have run one job per Beam step (ExampleGen, StatisticsGen, Transform,
Evaluator, ScannIndexGen), and the SDK workers, never the launching
process, read and write the bucket. That catches what the in-memory runner
forgives: state that does not pickle, side inputs that do not serialise, a
DoFn that reads a file only the launching process has, or a bucket only it
can reach. Its demo then serves the pushed model from the bucket over gRPC.
The server is started once more on its own, watching the bucket's base path,
and answers a tensorflow-serving-api Predict. Bad storage fails in one line
before anything is written, for each of four faults.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from data import storage
from serving import client
from tests import beam_services
from tests import object_store
from tests.object_store import object_store_server  # noqa: F401  pylint: disable=unused-import
from tests import pipeline_fixtures
from tfx_pipeline import cli

# The run takes minutes on two cores (every step starts its own SDK worker
# processes); on a loaded machine more than the suite's 900 s default.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

# The CLI run is a child process: TensorFlow's S3 client keeps the endpoint
# it first saw, and only a fresh process exits through
# transforms.filesystems.exit_process.
RUN_TIMEOUT_S = 1800
MODEL_NAME = "retrieval"
# Few users and one epoch: what is under test is where the steps run and
# where they read and write.
SAMPLE_USERS = 60


@pytest.fixture(scope="module")
def bucket_run(object_store_server, tmp_path_factory):
  """`vrec run` with the dataset, the workspace and the push in one bucket,
  on the PortableRunner.

  Yields:
    `(store, metadata dir, the finished run, its argv, the job states by
    step)`. The module's tests run with this process's environment pointing
    at the store.
  """
  store = object_store_server.create_store()
  with pytest.MonkeyPatch.context() as patch, beam_services.start(
      tmp_path_factory.mktemp("beam_services"), store.env()) as (
          job_endpoint, worker_pool):
    object_store.set_env(patch, store.env())
    dataset_dir = store.uri("datasets", "movielens-sample")
    pipeline_fixtures.write_movielens_sample(dataset_dir, n_users=SAMPLE_USERS)
    metadata_dir = tmp_path_factory.mktemp("metadata")
    argv = ["run", "--dataset", "contract", "--dataset-dir", dataset_dir,
            "--workspace", store.uri("ws"), "--pipeline-name", "bucket",
            "--hparam", "epochs=1", "--hparam", "batch_size=128",
            "--set", f"metadata_dir={metadata_dir}",
            "--set", "baselines.families=[]", "--set", "gate.lower_bound=0.0",
            "--set", "beam_args=" + json.dumps(
                beam_services.beam_args(job_endpoint, worker_pool))]
    finished = subprocess.run(
        [sys.executable, "-m", "tfx_pipeline", *argv],
        env=store.env(), cwd=tmp_path_factory.mktemp("cwd"),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    yield (store, metadata_dir, finished, argv,
           beam_services.job_states_by_step(job_endpoint))


def test_every_beam_step_ran_once_on_the_portable_runner(bucket_run):
  _, _, finished, argv, job_states = bucket_run
  assert finished.returncode == 0, finished.stderr[-3000:]
  config = cli.config_from_args(cli.build_parser().parse_args(argv))
  # The markers name every step that the run's pipeline gives to Beam.
  assert set(pipeline_fixtures.beam_args_by_node(config)) == set(
      beam_services.BEAM_STEP_MARKERS)
  # One finished job per Beam step: none ran outside the job service, none
  # ran twice, and no other job ran.
  assert job_states == {step: ["DONE"]
                        for step in beam_services.BEAM_STEP_MARKERS}


def test_the_run_reads_and_writes_only_the_bucket_and_pushes_there(bucket_run):
  store, metadata_dir, finished, _, _ = bucket_run
  assert finished.returncode == 0, finished.stderr[-3000:]
  out = finished.stdout

  assert "Full-ranking metrics on the eval split" in out
  assert "most-popular" in out
  pushed = re.search(r"pushed:\s+(\S+)", out).group(1)
  assert pushed.startswith(store.uri("ws", "serving", MODEL_NAME) + "/")
  version = pushed.rstrip("/").rsplit("/", 1)[1]
  keys = store.keys("ws/")
  version_prefix = f"ws/serving/{MODEL_NAME}/{version}/"
  assert f"{version_prefix}saved_model.pb" in keys
  assert any(key.startswith(f"{version_prefix}variables/") for key in keys)
  assert (f"{version_prefix}assets.extra/scann_index/index_config.json"
          in keys)
  # Beam (Transform, StatisticsGen, Evaluator) and TFX wrote there too.
  for component in ("Transform", "StatisticsGen", "Evaluator",
                    "ScannIndexGen", "Trainer"):
    assert any(key.startswith(f"ws/pipelines/bucket/{component}/")
               for key in keys), component
  report = re.search(r"HTML report: (\S+)", out).group(1)
  assert report.startswith(store.uri("ws", "pipelines", "bucket")) and (
      report.endswith("/index.html"))
  assert "<html" in storage.read_text(report).lower()
  assert sorted(os.listdir(metadata_dir)) == ["bucket"]
  # The SDK workers wrote the train split there.
  assert any(re.fullmatch(
      r"ws/pipelines/bucket/InteractionExampleGen/examples/\d+/Split-train/"
      r"[^/]+", key) for key in keys)


def test_the_demo_served_the_pushed_model_from_the_bucket(bucket_run):
  store, _, finished, _, _ = bucket_run
  assert finished.returncode == 0, finished.stderr[-3000:]
  assert f"Serving {store.uri('ws', 'serving', MODEL_NAME)} on " in (
      finished.stdout)
  assert re.search(r"^   1\. .+ \(-?\d+\.\d{3}\)", finished.stdout, re.M)
  assert "Server stopped." in finished.stdout


def test_the_server_watches_the_bucket_and_answers_predict(bucket_run):
  store, _, finished, _, _ = bucket_run
  assert finished.returncode == 0, finished.stderr[-3000:]
  server = subprocess.Popen(
      [sys.executable, "-m", "serving.server", "--model_base_path",
       store.uri("ws", "serving"), "--port", "0",
       "--version_policy", "latest:1"],
      env=store.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)
  try:
    address = _serving_address(server)
    version = client.wait_until_available(address, MODEL_NAME, timeout_s=300)
    result = client.recommend(address, MODEL_NAME, "1",
                              history=["50", "181"], timestamp=881250949,
                              k=5)
  finally:
    server.terminate()
    output, _ = server.communicate(timeout=60)
  assert str(version) in finished.stdout
  assert len(result.item_ids) == 5 and all(result.item_ids)
  assert server.returncode == 0, output[-3000:]


def _serving_address(server: subprocess.Popen) -> str:
  for line in server.stdout:
    match = re.search(r"Serving gRPC on (\S+)", line)
    if match:
      return match.group(1)
  raise AssertionError("the server exited before it listened")


@pytest.mark.parametrize("fault, env, message", object_store.STORAGE_FAULTS)
def test_bad_storage_fails_in_one_line_before_anything_is_written(
    object_store_server, tmp_path, monkeypatch, capsys, fault, env, message):
  store = object_store_server.create_store()
  dataset_dir = store.uri("datasets", "sample")
  store.client().put_object(Bucket=store.bucket,
                            Key="datasets/sample/interactions.csv",
                            Body=b"user_id,item_id,timestamp\nu1,i1,1\n")
  workspace = (f"s3://{object_store.MISSING_BUCKET}/ws"
               if fault == "missing bucket" else store.uri("ws"))
  object_store.set_env(monkeypatch, store.env())
  object_store.set_env(monkeypatch, env)

  status = cli.main(["run", "--dataset", "contract", "--dataset-dir",
                     dataset_dir, "--workspace", workspace, "--no-demo",
                     "--set", f"metadata_dir={tmp_path / 'metadata'}"])

  error = capsys.readouterr().err.strip()
  assert status == 1
  assert error.startswith("error: StorageError: s3://") and message in error
  assert "\n" not in error
  # No pipeline output, no pushed version: where the workspace is, or (its
  # bucket missing) no bucket made for it.
  if fault == "missing bucket":
    assert not store.bucket_exists(object_store.MISSING_BUCKET)
  else:
    assert store.keys("ws/") == []
  assert not (tmp_path / "metadata").exists()
