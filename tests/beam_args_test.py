"""`--beam-runner` and `--beam-arg` reach every Beam step, locally and on KFP.

Beam steps: InteractionExampleGen, StatisticsGen, Transform, every
Evaluator (the model's and each baseline's) and ScannIndexGen. The local
run is checked on the pipeline IR that `LocalDagRunner` compiles and runs;
the Kubeflow run on the compiled pipeline spec's container arguments.
"""

import json

from data import contract
from data import synthetic
from tests import pipeline_fixtures
from tfx_pipeline import cli

BEAM_FLAGS = ["--beam-runner", "PortableRunner",
              "--beam-arg=--job_endpoint=localhost:8099",
              "--beam-arg=--environment_type=EXTERNAL"]
EXPECTED_ARGS = ("--runner=PortableRunner", "--job_endpoint=localhost:8099",
                 "--environment_type=EXTERNAL")
BEAM_STEPS = {"InteractionExampleGen", "StatisticsGen", "Transform",
              "Evaluator", "Evaluator_ease", "Evaluator_item_knn",
              "ScannIndexGen"}


def test_local_run_gives_the_beam_flags_to_every_beam_step(tmp_path):
  args = cli.build_parser().parse_args(
      ["run", "--workspace", str(tmp_path), *BEAM_FLAGS])
  beam_args = pipeline_fixtures.beam_args_by_node(cli.config_from_args(args))
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
