"""The pipeline end to end in a bucket of a real S3 server (moto, started here).

One `vrec run` reads the dataset from the bucket and writes the pipeline root
(Beam outputs, TF and TFX artifacts, the ScaNN index, the HTML report) and
the pushed model there, with MLMD in a local SQLite file. Its Beam steps run
on the DirectRunner's multi-process mode with two workers, so each worker
process reads and writes the bucket on its own, and that mode, which catches
what the in-memory runner forgives (state that does not pickle, a file only
the launching process has), is covered here too. Its demo then
serves the pushed model from the bucket over gRPC. The server is started
once more on its own, watching the bucket's base path, and answers a
tensorflow-serving-api Predict. Bad storage fails in one line before anything
is written, for each of four faults.
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
from tests import object_store
from tests.object_store import object_store_server  # noqa: F401  pylint: disable=unused-import
from tests import pipeline_fixtures
from tfx_pipeline import cli

pytestmark = pytest.mark.e2e

# The CLI run is a child process: TensorFlow's S3 client keeps the endpoint
# it first saw, and only a fresh process exits through
# transforms.filesystems.exit_process.
RUN_TIMEOUT_S = 900
MODEL_NAME = "retrieval"
BEAM_WORKERS = 2
BEAM_ARGS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
             f"--direct_num_workers={BEAM_WORKERS}"]


@pytest.fixture(scope="module")
def bucket_run(object_store_server, tmp_path_factory):
  """`vrec run` with the dataset, the workspace and the push in one bucket.

  The module's tests run with this process's environment pointing at it.
  """
  store = object_store_server.create_store()
  with pytest.MonkeyPatch.context() as patch:
    object_store.set_env(patch, store.env())
    dataset_dir = store.uri("datasets", "movielens-sample")
    pipeline_fixtures.write_movielens_sample(dataset_dir)
    metadata_dir = tmp_path_factory.mktemp("metadata")
    hparams = [flag for key, value in pipeline_fixtures.FAST_HPARAMS.items()
               for flag in ("--hparam", f"{key}={value}")]
    finished = subprocess.run(
        [sys.executable, "-m", "tfx_pipeline", "run", "--dataset", "contract",
         "--dataset-dir", dataset_dir, "--workspace", store.uri("ws"),
         "--pipeline-name", "bucket", *hparams,
         "--set", f"metadata_dir={metadata_dir}",
         "--set", "baselines.families=[]", "--set", "gate.lower_bound=0.0",
         "--set", f"beam_args={json.dumps(BEAM_ARGS)}"],
        env=store.env(), cwd=tmp_path_factory.mktemp("cwd"),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    yield store, metadata_dir, finished


def test_the_run_reads_and_writes_only_the_bucket_and_pushes_there(bucket_run):
  store, metadata_dir, finished = bucket_run
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
  # Each Beam worker process wrote its own shard of the train split.
  train_shards = [key for key in keys if re.fullmatch(
      r"ws/pipelines/bucket/InteractionExampleGen/examples/\d+/Split-train/"
      r"[^/]+", key)]
  assert len(train_shards) == BEAM_WORKERS, train_shards


def test_the_demo_served_the_pushed_model_from_the_bucket(bucket_run):
  store, _, finished = bucket_run
  assert finished.returncode == 0, finished.stderr[-3000:]
  assert f"Serving {store.uri('ws', 'serving', MODEL_NAME)} on " in (
      finished.stdout)
  assert re.search(r"^   1\. .+ \(-?\d+\.\d{3}\)", finished.stdout, re.M)
  assert "Server stopped." in finished.stdout


def test_the_server_watches_the_bucket_and_answers_predict(bucket_run):
  store, _, finished = bucket_run
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
