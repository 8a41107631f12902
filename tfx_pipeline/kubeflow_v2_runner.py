"""Compiles the pipeline to a Kubeflow Pipelines v2 pipeline spec (JSON).

The spec runs the same components as the local run, in `kubeflow.image`
(which must contain this package; see the Dockerfile), with artifacts under
`kubeflow.pipeline_root`. Submit it with the KFP SDK or the Vertex AI console.
"""

from __future__ import annotations

import dataclasses
import os

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str) -> str:
  """Writes the KFP v2 pipeline JSON for `config` and returns its path."""
  schema_path = config.schema_path
  if schema_path == config_lib.CURATED_SCHEMA:
    schema_path = os.path.join(
        config.kubeflow.package_root,
        os.path.relpath(config_lib.CURATED_SCHEMA, config_lib.REPO_ROOT))
  kubeflow_config = dataclasses.replace(
      config, workspace=config.kubeflow.pipeline_root, schema_path=schema_path,
      dataset_dir=config.dataset_dir if config.dataset == "contract" else "",
      serving_dir="")
  pipeline = pipeline_lib.create_pipeline(kubeflow_config)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.kubeflow.image),
      output_filename=output_path)
  runner.run(pipeline, write_out=True)
  return output_path
