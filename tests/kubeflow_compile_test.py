"""The same pipeline compiles to a KFP v2 pipeline spec, reading a dataset that exists."""

import json
import os

from kfp import components
import pytest

from data import contract
from data import synthetic
from tests import kubeflow_spec_harness as harness
from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import
from tfx_pipeline import cli
from tfx_pipeline.components import pushed_baseline
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib

EXPECTED_TASKS = {
    "InteractionExampleGen", "StatisticsGen", "ImportSchemaGen",
    "ExampleValidator", "AnomaliesGate", "Transform", "Trainer", "Evaluator",
    "ScannIndexGen", "Pusher",
}


def test_compiled_spec_has_every_component_with_image_and_parameters(
    tmp_path, object_store):
  dataset_dir = object_store.uri("datasets", "synthetic")
  contract.write_dataset(synthetic.generate(n_users=5, n_items=8), dataset_dir)
  output = tmp_path / "pipeline.json"
  status = cli.main([
      "compile", "--output", str(output), "--dataset-dir", dataset_dir,
      "--beam-runner", "FlinkRunner",
      "--beam-arg=--parallelism=4", "--hparam", "epochs=3",
      "--set", "kubeflow.image=registry.example/vrec:1.2",
      "--set", "kubeflow.pipeline_root=gs://bucket/root",
  ])
  assert status == 0
  spec = json.loads(output.read_text())["pipelineSpec"]

  tasks = set(spec["root"]["dag"]["tasks"])
  assert EXPECTED_TASKS <= tasks
  assert any(task.startswith("latest_blessed_model_resolver") for task in tasks)

  executors = spec["deploymentSpec"]["executors"]
  for task in EXPECTED_TASKS:
    container = executors[f"{task}_executor"]["container"]
    assert container["image"] == "registry.example/vrec:1.2"
  transform_args = executors["Transform_executor"]["container"]["args"]
  assert "--runner=FlinkRunner" in transform_args
  assert "--parallelism=4" in transform_args

  custom_config = json.loads(_parameter(spec, "Trainer", "custom_config"))
  assert custom_config["model_family"] == "two_tower"
  assert custom_config["hparams"]["epochs"] == 3
  assert _parameter(spec, "Trainer", "run_fn") == "models.trainer.run_fn"
  assert _parameter(spec, "InteractionExampleGen", "dataset_dir") == dataset_dir
  assert _parameter(spec, "ImportSchemaGen", "schema_file") == (
      "/pipeline/" + os.path.relpath(config_lib.CURATED_SCHEMA,
                                     config_lib.REPO_ROOT))


@pytest.mark.parametrize("dataset_dir_flag, message", [
    ([], "compile needs --dataset-dir"),
    (["--dataset-dir", "s3://{bucket}/datasets/never-uploaded"],
     "no contract dataset at s3://{bucket}/datasets/never-uploaded"),
])
def test_compile_refuses_a_dataset_that_is_not_there(
    tmp_path, object_store, capsys, dataset_dir_flag, message):
  output = tmp_path / "pipeline.json"
  flags = [flag.format(bucket=object_store.bucket) for flag in dataset_dir_flag]

  status = cli.main(["compile", "--output", str(output), *flags,
                     "--set", "kubeflow.pipeline_root=s3://team-bucket/vrec"])

  error = capsys.readouterr().err.strip()
  assert status == 1 and not output.exists()
  assert message.format(bucket=object_store.bucket) in error
  assert error.endswith("upload one first, e.g. `vrec import-data "
                        "movielens-100k s3://team-bucket/vrec/datasets/"
                        "movielens-100k`")
  assert "\n" not in error


def _parameter(spec, task, name):
  value = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]
  return value["runtimeValue"]["constantValue"]["stringValue"]


def _compile_locally(tmp_path, *flags) -> dict:
  """The `pipelineSpec` `vrec compile FLAGS` writes for a local dataset."""
  dataset_dir = str(tmp_path / "dataset")
  contract.write_dataset(synthetic.generate(n_users=5, n_items=8), dataset_dir)
  output = tmp_path / "pipeline.json"
  assert cli.main(["compile", "--output", str(output), "--dataset-dir",
                   dataset_dir, "--set",
                   "kubeflow.pipeline_root=s3://bucket/vrec", *flags]) == 0
  return json.loads(output.read_text())["pipelineSpec"]


def test_the_kfp_target_finds_the_baseline_in_a_container_task(tmp_path):
  spec = _compile_locally(tmp_path, "--target", "kfp")
  tasks = spec["root"]["dag"]["tasks"]
  executors = spec["deploymentSpec"]["executors"]

  assert not any("resolver" in task for task in tasks)
  assert tasks["Evaluator"]["inputs"]["artifacts"]["baseline_model"] == {
      "taskOutputArtifact": {"outputArtifactKey": "model",
                             "producerTask": pipeline_lib.LATEST_PUSHED_MODEL}}
  evaluator_args = executors["Evaluator_executor"]["container"]["args"]
  assert evaluator_args[evaluator_args.index("--executor_class_path") + 1] == (
      "tfx_pipeline.components.pushed_baseline.EvaluatorExecutor")
  # The lookup reads where the Pusher writes, afresh on every run.
  lookup = tasks[pipeline_lib.LATEST_PUSHED_MODEL]
  push_dir = lookup["inputs"]["parameters"]["push_dir"]["runtimeValue"][
      "constant"]
  destination = json.loads(tasks["Pusher"]["inputs"]["parameters"][
      "push_destination"]["runtimeValue"]["constant"])
  assert push_dir == destination["filesystem"]["base_directory"] == (
      "s3://bucket/vrec/serving/retrieval")
  assert lookup["cachingOptions"] == {"enableCache": False}
  assert tasks["Evaluator"]["cachingOptions"] == {"enableCache": True}
  assert executors[f"{pipeline_lib.LATEST_PUSHED_MODEL}_executor"][
      "container"]["args"][1] == (
          f"{pushed_baseline.__name__}.LatestPushedModel_Executor")


def test_the_kfp_target_passes_the_open_source_backends_rules(tmp_path):
  kfp_spec = _compile_locally(tmp_path / "kfp", "--target", "kfp")
  vertex_spec = _compile_locally(tmp_path / "vertex")

  assert kfp_spec["schemaVersion"] == "2.1.0"
  assert harness.open_source_backend_problems(kfp_spec) == []
  assert all(set(executor) == {"container"} for executor
             in kfp_spec["deploymentSpec"]["executors"].values())
  # The same rules refuse the Vertex AI spec: its resolvers and its schema
  # 2.0.0 parameters.
  problems = harness.open_source_backend_problems(vertex_spec)
  assert any("['resolver']" in problem for problem in problems)
  assert any("constantValue" in problem for problem in problems)
  assert any("no parameterType" in problem for problem in problems)
  # The KFP SDK (2.5.0 here) loads the file the docs have users submit.
  spec_path = tmp_path / "vrec_pipeline_spec.json"
  spec_path.write_text(json.dumps(kfp_spec))
  loaded = components.load_component_from_file(str(spec_path))
  assert loaded.pipeline_spec.root.dag.tasks["Pusher"].component_ref.name == (
      "Pusher")


def _custom_config(spec, task="Trainer"):
  parameters = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
  value = parameters["custom_config"]["runtimeValue"]
  return json.loads(value.get("constant") or
                    value["constantValue"]["stringValue"])


def test_the_vertex_trainer_starts_a_job_with_the_worker_pools(tmp_path):
  spec = _compile_locally(
      tmp_path, "--set", "training.workers=3",
      "--set", "training.gpus_per_worker=2",
      "--set", "training.vertex_project=team-project",
      "--set", "kubeflow.image=registry.example/vrec:2")
  args = spec["deploymentSpec"]["executors"]["Trainer_executor"][
      "container"]["args"]
  assert args[args.index("--executor_class_path") + 1] == (
      "tfx.extensions.google_cloud_ai_platform.trainer.executor."
      "GenericExecutor")
  custom_config = _custom_config(spec)
  assert custom_config["distribution"] == "multi_worker"
  assert custom_config["ai_platform_enable_vertex"] is True
  assert custom_config["ai_platform_vertex_region"] == "us-central1"
  job = custom_config["ai_platform_training_args"]
  assert job["project"] == "team-project"
  pools = job["job_spec"]["worker_pool_specs"]
  # The chief, then the two other workers; two GPUs each, the same image.
  assert [pool["replica_count"] for pool in pools] == [1, 2]
  for pool in pools:
    assert pool["machine_spec"]["accelerator_count"] == 2
    assert pool["container_spec"] == {"image_uri": "registry.example/vrec:2"}


def test_one_process_trains_in_the_pipeline_s_own_task(tmp_path):
  spec = _compile_locally(tmp_path)
  args = spec["deploymentSpec"]["executors"]["Trainer_executor"][
      "container"]["args"]
  assert args[args.index("--executor_class_path") + 1].endswith(
      "ProcessTrainerExecutor")
  custom_config = _custom_config(spec)
  assert "distribution" not in custom_config
  assert "ai_platform_training_args" not in custom_config


def test_open_source_kfp_gives_one_trainer_its_gpus_and_refuses_workers(
    tmp_path, capsys):
  spec = _compile_locally(tmp_path / "gpus", "--target", "kfp",
                          "--set", "training.gpus_per_worker=4")
  assert spec["deploymentSpec"]["executors"]["Trainer_executor"][
      "container"]["resources"] == {
          "accelerator": {"type": "nvidia.com/gpu", "count": "4"}}
  assert _custom_config(spec)["distribution"] == "mirrored"
  dataset_dir = str(tmp_path / "dataset")
  contract.write_dataset(synthetic.generate(n_users=5, n_items=8), dataset_dir)
  assert cli.main(["compile", "--target", "kfp", "--output",
                   str(tmp_path / "refused.json"), "--dataset-dir",
                   dataset_dir, "--set", "training.workers=2"]) != 0
  assert "compile for the vertex target" in capsys.readouterr().err
