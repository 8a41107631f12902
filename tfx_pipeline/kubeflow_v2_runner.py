"""Compiles the pipeline to a Kubeflow Pipelines v2 pipeline spec (JSON).

The spec runs the same components as the local run, in `kubeflow.image`
(which must contain this package; see the Dockerfile), with artifacts under
`kubeflow.pipeline_root`, reading the contract dataset at `dataset_dir`, which
must already be where the cluster can read it (a bucket, usually): compiling
refuses a dataset that is not there and says how to upload one.

Two targets, one per backend (docs/kubeflow.md):

- `vertex`: Vertex AI Pipelines. Pipeline spec schema 2.0.0; the Evaluator's
  baseline comes from TFX's resolver, which Vertex AI runs as ML Metadata
  queries.
- `kfp`: open-source Kubeflow Pipelines 2.x. Its Argo compiler runs container
  and importer tasks only, and its driver reads parameters in the schema
  2.1.0 form (`runtimeValue.constant`, `parameterType`), so this target
  compiles schema 2.1.0 and finds the baseline with a container task that
  reads the serving directory (`components.pushed_baseline`).

Both carry the Trainer's workers and GPUs (`config.training`,
`distributed_training`): on Vertex AI as a custom job's worker pools, on
open-source KFP as the Trainer task's GPUs.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx.dsl.io import fileio
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from data import contract
from data import storage
from tfx_pipeline import config as config_lib
from tfx_pipeline import distributed_training
from tfx_pipeline import kubeflow_entrypoint
from tfx_pipeline import pipeline as pipeline_lib

VERTEX = "vertex"
KFP = "kfp"
TARGETS = (VERTEX, KFP)


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


def compile_pipeline(config: config_lib.PipelineConfig, output_path: str,
                     target: str = VERTEX) -> str:
  """Writes the KFP v2 pipeline JSON for `config` and returns its path.

  Args:
    config: the pipeline configuration.
    output_path: where the PipelineJob JSON goes.
    target: the backend that runs it, one of `TARGETS`.

  Raises:
    DatasetNotUploadedError: if `config.dataset_dir` holds no dataset.
    ValueError: on an unknown target, or several Trainer workers on `kfp`.
  """
  if target not in TARGETS:
    raise ValueError(f"compile target {target!r}: use one of {TARGETS}")
  require_dataset(config)
  schema_path = config.schema_path
  if schema_path == config_lib.CURATED_SCHEMA:
    schema_path = os.path.join(
        config.kubeflow.package_root,
        os.path.relpath(config_lib.CURATED_SCHEMA, config_lib.REPO_ROOT))
  kubeflow_config = dataclasses.replace(
      config, workspace=config.kubeflow.pipeline_root, schema_path=schema_path,
      serving_dir="")
  open_source = target == KFP
  trainer_gpus = (distributed_training.gpu_resources(config.training)
                  if open_source else None)
  pipeline = pipeline_lib.create_pipeline(
      kubeflow_config, baseline_from_serving=open_source,
      vertex_training=(not open_source and
                       distributed_training.on_vertex(config.training)))
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=config.kubeflow.image,
          default_commands=kubeflow_entrypoint.COMMAND,
          use_pipeline_spec_2_1=open_source),
      output_filename=output_path)
  job = runner.run(pipeline, write_out=not open_source)
  if open_source:
    # TFX caches every task or none; a cached lookup would hand every later
    # run the first run's answer (often "nothing pushed yet").
    job["pipelineSpec"]["root"]["dag"]["tasks"][
        pipeline_lib.LATEST_PUSHED_MODEL]["cachingOptions"] = {
            "enableCache": False}
    if trainer_gpus:
      job["pipelineSpec"]["deploymentSpec"]["executors"]["Trainer_executor"][
          "container"]["resources"] = trainer_gpus
    with fileio.open(output_path, "w") as output:
      json.dump(job, output, sort_keys=True)
  return output_path
