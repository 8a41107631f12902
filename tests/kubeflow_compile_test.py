"""The same pipeline compiles to a KFP v2 pipeline spec."""

import json
import os

from tfx_pipeline import cli
from tfx_pipeline import config as config_lib

EXPECTED_TASKS = {
    "InteractionExampleGen", "StatisticsGen", "ImportSchemaGen",
    "ExampleValidator", "AnomaliesGate", "Transform", "Trainer", "Evaluator",
    "ScannIndexGen", "Pusher",
}


def test_compiled_spec_has_every_component_with_image_and_parameters(tmp_path):
  output = tmp_path / "pipeline.json"
  status = cli.main([
      "compile", "--output", str(output), "--beam-runner", "FlinkRunner",
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
  assert _parameter(spec, "InteractionExampleGen", "dataset_dir").startswith(
      "gs://bucket/root/")
  assert _parameter(spec, "ImportSchemaGen", "schema_file") == (
      "/pipeline/" + os.path.relpath(config_lib.CURATED_SCHEMA,
                                     config_lib.REPO_ROOT))


def _parameter(spec, task, name):
  value = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]
  return value["runtimeValue"]["constantValue"]["stringValue"]
