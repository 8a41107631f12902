"""The compiled Kubeflow spec runs, task by task, from the installed wheel.

`tests.kubeflow_spec_harness` plays the KFP backend: every task of the
`vrec compile` output runs in its own process through the spec's container
command (TFX's Kubeflow v2 entrypoint; a fork of one warm interpreter of the
image, `harness.TaskLauncher`), from the project wheel, never from the
source tree, with the dataset, every artifact and the pushed model in a
bucket of the local S3-compatible server (`tests.object_store`). The installed
`vrec serve`, pointed at the bucket, then answers a tensorflow-serving-api
Predict. The Dockerfile, the spec and the harness are checked to agree on the
image, its entrypoint, the package root and the schema path.

Both targets run: `vertex` with its resolver tasks evaluated as Vertex AI
runs them, and `kfp` with none (the harness refuses a resolver there), twice
in one bucket: the second run, cached as KFP caches it, reruns the baseline
lookup, the Evaluator and the Pusher, and the Evaluator is gated against the
first run's pushed model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import re
import shlex
import signal
import subprocess
import sys
from typing import Iterator
import zipfile

from google.auth import credentials
from google.cloud import aiplatform
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import numpy as np
import pytest
import tensorflow as tf
from tfx.components.evaluator import constants as evaluator_constants

from models import serving_names
from serving import client
from serving import testing_grpc
from tests import kubeflow_spec_harness as harness
from tests import object_store
from tests import pipeline_fixtures
from tests.object_store import object_store_server  # noqa: F401  (fixture)
from tfx_pipeline import cli
from tfx_pipeline.components import pushed_baseline
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib

# End to end: its two compiled runs take about five minutes of one worker, so
# the scheduler hands this file out with the pipeline tests, first.
pytestmark = pytest.mark.e2e

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
SCHEMA_IN_PACKAGE = "tfx_pipeline/schema/schema.pbtxt"
IMAGE = "registry.example/vrec-pipeline:test"
RUN_ID = "run-1"
MODEL_NAME = config_lib.PipelineConfig().model_name
# Few users, one epoch and no classical baselines: the test is about how the
# spec runs, not the model (tests/pipeline_e2e_test.py covers the gate and
# the model, pipeline_test the baselines' topology).
SAMPLE_USERS = 80
RESOLVER = "latest_blessed_model_resolver"
BLESSING_RESOLVER = f"{RESOLVER}-model-blessing-resolver"
MODEL_RESOLVER = f"{RESOLVER}-model-resolver"
LOOKUP = pipeline_lib.LATEST_PUSHED_MODEL
BASELINE_URI_KEY = evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY
BASELINE_ID_KEY = evaluator_constants.ARTIFACT_PROPERTY_BASELINE_MODEL_ID_KEY


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory) -> Iterator[harness.WheelInstall]:
  directory = tmp_path_factory.mktemp("wheel_install")
  wheel = harness.build_wheel(REPO_ROOT, directory / "wheels")
  yield harness.install_wheel(wheel, directory)
  # The runs' warm interpreters, about 1 GB each, end with this file.
  harness.close_launchers()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> pathlib.Path:
  return pipeline_fixtures.write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"), n_users=SAMPLE_USERS)


@dataclasses.dataclass(frozen=True)
class CompiledRun:
  job: dict
  run: harness.SpecRun
  store: object_store.ObjectStore

  @property
  def pushed(self) -> dict:
    return self.run.outputs["Pusher"]["pushed_model"][0]


@pytest.fixture(scope="module")
def compiled_run(wheel_install, sample_dir, object_store_server,  # noqa: F811
                 tmp_path_factory) -> CompiledRun:
  """The installed `vrec compile` output on a MovieLens sample, run once."""
  return _compile_and_run(wheel_install, sample_dir, object_store_server,
                          tmp_path_factory.mktemp("kubeflow_run"))


@pytest.fixture(scope="module")
def kfp_runs(wheel_install, sample_dir, object_store_server,  # noqa: F811
             tmp_path_factory) -> tuple[CompiledRun, harness.SpecRun]:
  """`vrec compile --target kfp`, run once in a fresh bucket, then again.

  The second run takes the first run's outputs wherever KFP's cache would
  (every task upstream of the baseline lookup), so it costs three tasks.
  """
  directory = tmp_path_factory.mktemp("kfp_run")
  first = _compile_and_run(wheel_install, sample_dir, object_store_server,
                           directory, target_flags=["--target", "kfp"])
  second = harness.SpecRun.from_job(
      first.job, run_id="run-2", install=first.run.install, image=IMAGE,
      store=first.run.store, scratch=directory / "scratch", resolvers=False)
  second.run(cache=first.run)
  return first, second


def _compile_and_run(wheel_install, sample_dir, object_store_server,  # noqa: F811
                     directory: pathlib.Path, target_flags=()) -> CompiledRun:
  """Compiles with the installed `vrec compile TARGET_FLAGS`, runs it once.

  The sample is uploaded to a fresh bucket; the pipeline root is in it too.
  """
  store = object_store_server.create_store()
  for path in sorted(sample_dir.iterdir()):
    store.client().upload_file(str(path), store.bucket,
                               f"datasets/sample/{path.name}")
  install = dataclasses.replace(wheel_install, extra_environment={
      name: value for name, value in store.env().items()
      if name.startswith("AWS_")})
  job = harness.compile_spec(install, directory / "pipeline.json", [
      *target_flags,
      "--dataset", "contract", "--dataset-dir", store.uri("datasets", "sample"),
      "--hparam", "epochs=1", "--hparam", "batch_size=128",
      "--set", "baselines.families=[]",
      # Open gate: pipeline_e2e_test covers blessing; this run must push.
      "--set", "gate.lower_bound=0",
      "--set", f"kubeflow.image={IMAGE}",
      "--set", f"kubeflow.pipeline_root={store.uri('vrec')}",
      "--set", f"kubeflow.package_root={install.package_root}",
  ])
  run = harness.SpecRun.from_job(
      job, run_id=RUN_ID, install=install, image=IMAGE,
      store=harness.ArtifactStore(directory / "metadata.json"),
      scratch=directory / "scratch", resolvers=not target_flags)
  run.run()
  return CompiledRun(job, run, store)


# ------------------------------------------------------------- the wheel ---


def test_the_stand_in_image_imports_the_wheel_not_the_source_tree(
    wheel_install):
  with zipfile.ZipFile(wheel_install.wheel) as wheel:
    packages = wheel.read("vrec-0.1.0.dist-info/top_level.txt").decode().split()
  probe = wheel_install.run(
      ["python", "-c", "import importlib.util, json, sys; print(json.dumps("
       "{'origins': [importlib.util.find_spec(name).origin for name in "
       f"{packages!r}], 'path': sys.path}}))"],
      capture_output=True, text=True, check=True)
  found = json.loads(probe.stdout.strip().splitlines()[-1])
  assert len(packages) >= 7
  for origin in found["origins"]:
    assert pathlib.Path(origin).is_relative_to(wheel_install.package_root)
  source_dirs = [entry for entry in found["path"]
                 if entry and (pathlib.Path(entry) / "models").is_dir()]
  assert source_dirs == [str(wheel_install.package_root)]
  assert (wheel_install.package_root / SCHEMA_IN_PACKAGE).is_file()


# -------------------------------------------------------- the run itself ---


def test_every_task_runs_in_dependency_order(compiled_run):
  tasks = compiled_run.job["pipelineSpec"]["root"]["dag"]["tasks"]
  assert set(compiled_run.run.outputs) == set(tasks)
  order = harness.task_order(compiled_run.job["pipelineSpec"])
  for position, name in enumerate(order):
    assert set(tasks[name].get("dependentTasks", [])) <= set(order[:position])
  examples = compiled_run.run.outputs["InteractionExampleGen"]["examples"][0]
  assert examples["uri"] == compiled_run.run.output_uri(
      "InteractionExampleGen", "examples")
  assert json.loads(examples["metadata"]["split_names"]) == ["train", "eval"]


def test_first_run_resolves_no_baseline_and_pushes_to_the_bucket(
    compiled_run):
  outputs = compiled_run.run.outputs
  assert outputs[BLESSING_RESOLVER]["model_blessing"] == []
  assert outputs[MODEL_RESOLVER]["model"] == []
  assert outputs["Evaluator"]["blessing"][0]["metadata"]["blessed"] == 1
  assert compiled_run.pushed["metadata"]["pushed"] == 1
  destination = compiled_run.pushed["metadata"]["pushed_destination"]
  version = destination.rsplit("/", 1)[1]
  assert destination == compiled_run.store.uri("vrec", "serving", MODEL_NAME,
                                               version)
  assert f"vrec/serving/{MODEL_NAME}/{version}/saved_model.pb" in (
      compiled_run.store.keys("vrec/serving/"))
  examples = compiled_run.store.keys(
      f"vrec/pipelines/{compiled_run.run.pipeline_name}/"
      f"{compiled_run.run.pipeline_name}/{RUN_ID}/InteractionExampleGen/")
  assert any("Split-eval" in key for key in examples)


def test_next_run_resolves_this_runs_blessed_model(compiled_run, tmp_path):
  first = compiled_run.run
  second = dataclasses.replace(first, run_id="run-2", outputs={},
                               scratch=tmp_path)
  second.run_task(BLESSING_RESOLVER)
  second.run_task(MODEL_RESOLVER)
  assert second.outputs[BLESSING_RESOLVER]["model_blessing"] == (
      first.outputs["Evaluator"]["blessing"])
  assert second.outputs[MODEL_RESOLVER]["model"] == (
      first.outputs["Trainer"]["model"])


def test_kfp_first_run_finds_no_baseline_and_pushes(kfp_runs):
  first, _ = kfp_runs
  assert harness.open_source_backend_problems(first.job["pipelineSpec"]) == []
  outputs = first.run.outputs
  assert set(first.run.ran) == set(first.job["pipelineSpec"]["root"]["dag"][
      "tasks"])
  assert outputs[LOOKUP]["model"][0]["metadata"][
      pushed_baseline.FOUND_KEY] == 0
  blessing = outputs["Evaluator"]["blessing"][0]["metadata"]
  assert blessing["blessed"] == 1 and BASELINE_URI_KEY not in blessing
  assert first.pushed["metadata"]["pushed"] == 1


def test_kfp_second_run_is_gated_against_the_first_runs_push(kfp_runs):
  first, second = kfp_runs
  assert second.ran == [LOOKUP, "Evaluator", "Pusher"]
  baseline = second.outputs[LOOKUP]["model"][0]
  first_push = first.pushed["metadata"]["pushed_destination"]
  assert baseline["metadata"][pushed_baseline.FOUND_KEY] == 1
  assert baseline["metadata"][
      pushed_baseline.PUSHED_DESTINATION_KEY] == first_push
  # The Evaluator got that copy of the first run's model as its baseline.
  blessing = second.outputs["Evaluator"]["blessing"][0]["metadata"]
  assert blessing[BASELINE_URI_KEY] == baseline["uri"]
  assert blessing[BASELINE_ID_KEY] == baseline["name"]
  assert blessing["current_model_id"] == (
      first.run.outputs["Trainer"]["model"][0]["name"])
  copied = first.store.keys(
      baseline["uri"].removeprefix(first.store.uri() + "/") + "/")
  assert any(key.endswith("Format-Serving/saved_model.pb") for key in copied)
  assert not any("assets.extra" in key for key in copied)
  # Same model, no regression: blessed and pushed as a second version.
  assert blessing["blessed"] == 1
  second_push = second.outputs["Pusher"]["pushed_model"][0]["metadata"]
  assert second_push["pushed"] == 1
  assert second_push["pushed_destination"] != first_push


def test_the_installed_server_answers_predict_from_the_bucket(compiled_run):
  with _installed_server(compiled_run.run.install,
                         compiled_run.store.uri("vrec", "serving")) as address:
    client.wait_until_available(address, MODEL_NAME, timeout_s=120)
    with testing_grpc.open_stubs(address) as stubs:
      response = stubs.prediction.Predict(
          testing_grpc.predict_request(["1"], [["50", "181"]],
                                       model_name=MODEL_NAME), timeout=60)
  item_ids = tf.make_ndarray(response.outputs[serving_names.ITEM_IDS])
  scores = tf.make_ndarray(response.outputs[serving_names.SCORES])
  assert item_ids.shape == (1, 10) and scores.shape == (1, 10)
  assert np.all(np.diff(scores, axis=1) <= 1e-6)
  assert str(response.model_spec.version.value) == (
      compiled_run.pushed["metadata"]["pushed_destination"].rsplit("/", 1)[1])


@contextlib.contextmanager
def _installed_server(install: harness.WheelInstall, model_base_path: str):
  """`vrec serve` from the wheel on a free port; yields its address."""
  server = subprocess.Popen(
      [str(install.vrec), "serve", "--model_base_path", model_base_path,
       "--port", "0", "--file_system_poll_wait_seconds", "0.5"],
      cwd=install.package_root, env=install.environment(),
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    for line in server.stdout:
      if match := re.match(r"Serving gRPC on (\S+)", line):
        yield match.group(1)
        break
    else:
      pytest.fail(f"vrec serve exited {server.wait()} before serving")
  finally:
    server.terminate()
    server.wait(timeout=60)


# ------------------------------------------------- the harness on its own ---


def _blessing(name: str, blessed: float) -> dict:
  return {"name": name, "uri": f"/blessings/{name}", "type": {},
          "metadata": {"blessed": blessed}, "schema_title": "tfx.ModelBlessing",
          "state": harness.LIVE}


def test_resolver_query_finds_the_newest_match_and_refuses_other_clauses(
    tmp_path):
  store = harness.ArtifactStore(tmp_path / "metadata.json")
  store.record([_blessing("a", 1.0), _blessing("b", 0.0), _blessing("c", 1.0),
                _blessing("d", 0.0)])
  blessed = ('schema_title="tfx.ModelBlessing" AND state=LIVE AND '
             "metadata.blessed.number_value=1")
  assert store.query(blessed) == [_blessing("c", 1.0)]
  assert store.query('name="b" AND state=LIVE') == [_blessing("b", 0.0)]
  with pytest.raises(harness.UnsupportedSpec, match="create_time"):
    store.query('schema_title="tfx.Model" AND create_time>1')


def _one_task_run(tmp_path, kind: str, executor: dict,
                  resolvers: bool = True) -> harness.SpecRun:
  spec = {
      "pipelineInfo": {"name": "p"},
      "root": {"dag": {"tasks": {"task": {
          "componentRef": {"name": "comp"}}}}},
      "components": {"comp": {"executorLabel": "exec"}},
      "deploymentSpec": {"executors": {"exec": {kind: executor}}},
  }
  return harness.SpecRun(spec=spec, pipeline_root="s3://b/root", run_id="r",
                         install=None, image=IMAGE,
                         store=harness.ArtifactStore(tmp_path / "m.json"),
                         scratch=tmp_path, resolvers=resolvers)


def test_an_importer_task_is_refused_not_guessed_at(tmp_path):
  run = _one_task_run(tmp_path, "importer", {
      "artifactUri": {"constantValue": {"stringValue": "s3://b/s"}}})
  with pytest.raises(harness.UnsupportedSpec, match="importer"):
    run.run()


def test_a_resolver_task_is_refused_for_the_open_source_backend(tmp_path):
  resolver = {"outputArtifactQueries": {"model": {
      "filter": 'schema_title="tfx.Model" AND state=LIVE'}}}
  run = _one_task_run(tmp_path, "resolver", resolver, resolvers=False)
  with pytest.raises(harness.UnsupportedSpec, match="resolver"):
    run.run()
  vertex = _one_task_run(tmp_path, "resolver", resolver)
  vertex.run()
  assert vertex.outputs == {"task": {"model": []}}


def test_a_rerun_takes_cached_outputs_only_where_caching_is_on(tmp_path):
  resolver = {"outputArtifactQueries": {"model": {
      "filter": 'schema_title="tfx.Model" AND state=LIVE'}}}
  first = _one_task_run(tmp_path, "resolver", resolver)
  first.run()
  uncached = dataclasses.replace(first, run_id="r2", outputs={})
  uncached.run(cache=first)
  first.spec["root"]["dag"]["tasks"]["task"]["cachingOptions"] = {
      "enableCache": True}
  cached = dataclasses.replace(first, run_id="r3", outputs={})
  cached.run(cache=first)
  assert (first.ran, uncached.ran, cached.ran) == (["task"], ["task"], [])
  assert cached.outputs == first.outputs


# A module a launched task runs: it prints how it was run, bumps a counter
# kept in a module the launcher imported, and ends as its argument says.
_TASK_MODULE = """
import os, signal, sys
import task_state
task_state.runs.append(sys.argv[1:])
print("name", __name__, "argv", sys.argv[1:], "runs", len(task_state.runs))
ending = sys.argv[1]
if ending == "raise":
  raise ValueError("the task failed")
if ending == "kill":
  os.kill(os.getpid(), signal.SIGKILL)
sys.exit(int(ending))
"""


@pytest.fixture
def task_launcher(tmp_path) -> Iterator[harness.TaskLauncher]:
  """A launcher for an image whose package root holds `_TASK_MODULE`."""
  package_root = tmp_path / "package_root"
  package_root.mkdir()
  (package_root / "task.py").write_text(_TASK_MODULE)
  (package_root / "task_state.py").write_text("runs = []\n")
  # This environment's interpreter stands in for the image's venv.
  install = harness.WheelInstall(
      wheel=tmp_path / "none.whl", venv=pathlib.Path(sys.prefix),
      package_root=package_root)
  yield install.launcher()
  harness.close_launchers()


@pytest.mark.parametrize("ending, status, logged", [
    ("0", 0, "name __main__ argv ['0'] runs 1"),
    ("3", 3, "name __main__ argv ['3'] runs 1"),
    ("raise", 1, "ValueError: the task failed"),
    ("kill", -signal.SIGKILL, "argv ['kill']"),
])
def test_a_launched_task_runs_as_python_m_in_a_process_of_its_own(
    task_launcher, tmp_path, ending, status, logged):
  # Each task is a fork of the launcher: the preloaded module's state is
  # what the launcher imported, not what the task before it left.
  for log in (tmp_path / "first.txt", tmp_path / "second.txt"):
    assert task_launcher.run(["python", "-m", "task"], [ending],
                             ["task_state"], log) == status
    assert logged in log.read_text()


def test_a_command_other_than_python_m_is_refused(task_launcher, tmp_path):
  with pytest.raises(harness.UnsupportedSpec, match="python -m"):
    task_launcher.run(["/bin/sh", "-c", "true"], [], [], tmp_path / "log")


# --------------------------------------- Dockerfile, spec and harness agree ---


def _dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
  """The Dockerfile as stages of (INSTRUCTION, arguments), lines joined."""
  joined = re.sub(r"\\\n", " ", text)
  stages = []
  for line in joined.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    instruction, _, arguments = line.partition(" ")
    if instruction.upper() == "FROM":
      stages.append([])
    stages[-1].append((instruction.upper(), arguments.strip()))
  return stages


def _instructions(stage, name: str) -> list[str]:
  return [arguments for instruction, arguments in stage if instruction == name]


def _environment(stage) -> dict[str, str]:
  environment = {}
  for arguments in _instructions(stage, "ENV"):
    for assignment in shlex.split(arguments):
      key, _, value = assignment.partition("=")
      environment[key] = value
  return environment


def _pip_installs(stage) -> list[list[str]]:
  return [shlex.split(command)[2:] for command in _instructions(stage, "RUN")
          if command.startswith("pip install ")]


@pytest.fixture(scope="module")
def default_job_path(sample_dir, tmp_path_factory) -> pathlib.Path:
  """The file `vrec compile` writes with the default kubeflow settings."""
  output = tmp_path_factory.mktemp("default_spec") / "pipeline.json"
  assert cli.main(["compile", "--output", str(output), "--dataset", "contract",
                   "--dataset-dir", str(sample_dir)]) == 0
  return output


@pytest.fixture(scope="module")
def default_spec(default_job_path) -> dict:
  return json.loads(default_job_path.read_text())["pipelineSpec"]


def test_dockerfile_builds_the_wheel_and_installs_it_at_the_package_root():
  wheel_stage, image_stage = _dockerfile_stages(DOCKERFILE.read_text())
  package_root = config_lib.KubeflowConfig().package_root
  # The wheel stage builds the wheel with `pip wheel` from the whole context.
  wheel_builds = [shlex.split(command) for command
                  in _instructions(wheel_stage, "RUN")
                  if command.startswith("pip wheel ")]
  assert len(wheel_builds) == 1 and "--no-deps" in wheel_builds[0]
  assert _instructions(wheel_stage, "COPY") == [f". {wheel_builds[0][-1]}"]
  # The image installs the pins, constrained to the lock the tests' stack was
  # installed with, then that wheel alone, at the package root, the way the
  # harness installs it.
  requirements, wheel = _pip_installs(image_stage)
  assert requirements[-4:] == ["-r", "/tmp/requirements.txt",
                               "-c", "/tmp/requirements-lock.txt"]
  assert "requirements.txt requirements-lock.txt /tmp/" in _instructions(
      image_stage, "COPY")
  assert wheel[:3] == ["--no-cache-dir", *harness.WHEEL_INSTALL_FLAGS]
  assert wheel[3] == package_root
  assert re.fullmatch(r"/wheels/vrec-\S*\.whl", wheel[4])
  environment = _environment(image_stage)
  for key, value in harness.IMAGE_ENVIRONMENT.items():
    assert environment[key] == value
  assert environment["PYTHONPATH"] == package_root
  assert _instructions(image_stage, "WORKDIR") == [package_root]


def test_spec_runs_the_image_entrypoint_with_the_packaged_schema(
    default_spec, wheel_install):
  image_stage = _dockerfile_stages(DOCKERFILE.read_text())[-1]
  entrypoint = json.loads(_instructions(image_stage, "ENTRYPOINT")[0])
  kubeflow = config_lib.KubeflowConfig()
  containers = [executor["container"] for executor
                in default_spec["deploymentSpec"]["executors"].values()
                if "container" in executor]
  assert containers
  for container in containers:
    assert container["command"] == entrypoint
    assert container["image"] == kubeflow.image
    assert harness.EXECUTOR_INPUT_PLACEHOLDER in container["args"]
  schema_file = (default_spec["root"]["dag"]["tasks"]["ImportSchemaGen"]
                 ["inputs"]["parameters"]["schema_file"]["runtimeValue"]
                 ["constantValue"]["stringValue"])
  assert schema_file == f"{kubeflow.package_root}/{SCHEMA_IN_PACKAGE}"
  with zipfile.ZipFile(wheel_install.wheel) as wheel:
    assert SCHEMA_IN_PACKAGE in wheel.namelist()


def test_wheel_requires_exactly_the_pinned_requirements(wheel_install):
  pins = [line.split("#", 1)[0].strip() for line
          in (REPO_ROOT / "requirements.txt").read_text().splitlines()]
  with zipfile.ZipFile(wheel_install.wheel) as wheel:
    metadata = wheel.read("vrec-0.1.0.dist-info/METADATA").decode()
  requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.MULTILINE)
  assert sorted(map(_requirement_key, requires)) == sorted(
      _requirement_key(pin) for pin in pins if pin)


def _requirement_key(text: str) -> tuple:
  """(name, sorted extras, version specifier): equal pins compare equal."""
  name, extras, specifier = re.fullmatch(
      r"\s*([\w.-]+)\s*(?:\[([^\]]*)\])?(.*)", text).groups()
  return (name.lower().replace("_", "-"),
          sorted(extra.strip() for extra in (extras or "").split(",")),
          sorted(re.sub(r"\s+", "", specifier).split(",")))


def test_kfp_and_vertex_sdks_accept_the_compiled_file(default_job_path):
  # docs/kubeflow.md, "Kubeflow Pipelines and Vertex AI", step 4, up to the network.
  job = json.loads(default_job_path.read_text())
  spec = json_format.ParseDict(job["pipelineSpec"],
                               pipeline_spec_pb2.PipelineSpec())
  assert spec.root.dag.tasks["Pusher"].component_ref.name == "Pusher"
  vertex_job = aiplatform.PipelineJob(
      display_name="vrec", template_path=str(default_job_path),
      project="project", location="us-central1",
      credentials=credentials.AnonymousCredentials())
  assert vertex_job.pipeline_spec["pipelineInfo"]["name"] == (
      job["pipelineSpec"]["pipelineInfo"]["name"])
