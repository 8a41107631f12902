"""The pipeline configures InteractionExampleGen from `config.examples`."""

from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib


def test_examples_config_reaches_the_component(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("examples.eval_max_users", "500")
  config.set("examples.split", "temporal")
  (example_gen,) = [component for component
                    in pipeline_lib.create_pipeline(config).components
                    if component.id == "InteractionExampleGen"]
  assert example_gen.exec_properties["eval_max_users"] == 500
  assert example_gen.exec_properties["split"] == "temporal"
