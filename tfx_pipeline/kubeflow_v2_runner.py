"""Compiles the pipeline to a Kubeflow Pipelines v2 pipeline spec (JSON).

The spec runs the same components as the local run, in `kubeflow.image`
(which must contain this package; see the Dockerfile), with artifacts under
`kubeflow.pipeline_root`, reading the contract dataset at `dataset_dir`, which
must already be where the cluster can read it (a bucket, usually): compiling
refuses a dataset that is not there and says how to upload one. Submit the
spec with the KFP SDK or the Vertex AI console.
"""

from __future__ import annotations

import dataclasses
import os

from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from data import contract
from data import storage
from tfx_pipeline import config as config_lib
from tfx_pipeline import kubeflow_entrypoint
from tfx_pipeline import pipeline as pipeline_lib


class DatasetNotUploadedError(FileNotFoundError):
  """The pipeline would read a dataset that is not there."""


def upload_hint(config: config_lib.PipelineConfig) -> str:
  """How to put `config.dataset` where a compiled pipeline can read it."""
  name = "NAME" if config.dataset == "contract" else config.dataset
  example = storage.join(config.kubeflow.pipeline_root, "datasets", name)
  return f"upload one first, e.g. `vrec import-data {name} {example}`"


def require_dataset(config: config_lib.PipelineConfig) -> None:
  """Raises DatasetNotUploadedError unless `dataset_dir` holds a contract dataset.

  Raises:
    DatasetNotUploadedError: naming the directory and the upload command.
    storage.StorageError: if the directory's storage cannot be reached.
  """
  storage.check_access(config.dataset_dir, write=False)
  if not any(storage.isfile(storage.join(config.dataset_dir,
                                         f"interactions{extension}"))
             for extension in contract.SUPPORTED_EXTENSIONS):
    raise DatasetNotUploadedError(
        f"no contract dataset at {config.dataset_dir} (no interactions.csv "
        f"or interactions.parquet); {upload_hint(config)}")


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str) -> str:
  """Writes the KFP v2 pipeline JSON for `config` and returns its path.

  Raises:
    DatasetNotUploadedError: if `config.dataset_dir` holds no dataset.
  """
  require_dataset(config)
  schema_path = config.schema_path
  if schema_path == config_lib.CURATED_SCHEMA:
    schema_path = os.path.join(
        config.kubeflow.package_root,
        os.path.relpath(config_lib.CURATED_SCHEMA, config_lib.REPO_ROOT))
  kubeflow_config = dataclasses.replace(
      config, workspace=config.kubeflow.pipeline_root, schema_path=schema_path,
      serving_dir="")
  pipeline = pipeline_lib.create_pipeline(kubeflow_config)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.kubeflow.image,
          default_commands=kubeflow_entrypoint.COMMAND),
      output_filename=output_path)
  runner.run(pipeline, write_out=True)
  return output_path
