"""`--beam-runner` and `--beam-arg` reach every Beam step, locally and on KFP.

Beam steps: InteractionExampleGen, StatisticsGen, Transform, every
Evaluator (the model's and each baseline's) and ScannIndexGen. The local
run is checked on the pipeline IR that `LocalDagRunner` compiles and runs;
the Kubeflow run on the compiled pipeline spec's container arguments.
"""

import json

from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import executable_spec_pb2
from tfx.proto.orchestration import pipeline_pb2

from data import contract
from data import synthetic
from tfx_pipeline import cli
from tfx_pipeline import pipeline as pipeline_lib

BEAM_FLAGS = ["--beam-runner", "PortableRunner",
              "--beam-arg=--job_endpoint=localhost:8099",
              "--beam-arg=--environment_type=EXTERNAL"]
EXPECTED_ARGS = ("--runner=PortableRunner", "--job_endpoint=localhost:8099",
                 "--environment_type=EXTERNAL")
BEAM_STEPS = {"InteractionExampleGen", "StatisticsGen", "Transform",
              "Evaluator", "Evaluator_ease", "Evaluator_item_knn",
              "ScannIndexGen"}


def _beam_args_by_node(config) -> dict[str, list[str]]:
  """Node id -> Beam args, for every node the local IR runs with Beam."""
  ir = compiler.Compiler().compile(pipeline_lib.create_pipeline(config))
  deployment = pipeline_pb2.IntermediateDeploymentConfig()
  ir.deployment_config.Unpack(deployment)
  beam_args = {}
  for node, spec in deployment.executor_specs.items():
    beam_spec = executable_spec_pb2.BeamExecutableSpec()
    if spec.Unpack(beam_spec):
      beam_args[node] = list(beam_spec.beam_pipeline_args)
  return beam_args


def test_local_run_gives_the_beam_flags_to_every_beam_step(tmp_path):
  args = cli.build_parser().parse_args(
      ["run", "--workspace", str(tmp_path), *BEAM_FLAGS])
  beam_args = _beam_args_by_node(cli.config_from_args(args))
  assert set(beam_args) == BEAM_STEPS
  for node, node_args in beam_args.items():
    assert set(EXPECTED_ARGS) <= set(node_args), node


def test_compiled_kubeflow_spec_gives_the_beam_flags_to_every_beam_step(
    tmp_path):
  output = tmp_path / "pipeline.json"
  # The spec names the data, which must exist; a local copy stands in for
  # the cluster's bucket.
  dataset_dir = contract.write_dataset(
      synthetic.generate(n_users=5, n_items=8), tmp_path / "dataset")
  assert cli.main(["compile", "--output", str(output), "--dataset-dir",
                   str(dataset_dir), *BEAM_FLAGS]) == 0
  executors = json.loads(output.read_text())["pipelineSpec"][
      "deploymentSpec"]["executors"]
  for node in BEAM_STEPS:
    container_args = executors[f"{node}_executor"]["container"]["args"]
    assert set(EXPECTED_ARGS) <= set(container_args), node
