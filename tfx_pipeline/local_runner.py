"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite MLMD.

The dataset, the pipeline root and the serving base path may be in object
storage (`s3://...`); MLMD stays a local SQLite file (`metadata_dir`).
"""

from __future__ import annotations

import logging
from typing import Sequence

from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline_lib

from data import contract
from data import importers
from data import storage
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline import run_summary


def prepare_dataset(config: config_lib.PipelineConfig) -> None:
  """Imports a public dataset into the contract layout, once.

  A user's own contract directory (`dataset == "contract"`) is only
  validated; an importer writes its output under the workspace.
  """
  if config.dataset == "contract":
    contract.load_dataset(config.dataset_dir)
    return
  # Importing again would change the files' mtimes and so bust the cache.
  if not storage.exists(storage.join(config.dataset_dir, "interactions.csv")):
    logging.info("Importing %s into %s", config.dataset, config.dataset_dir)
    importers.import_dataset(config.dataset, importers.default_source_root(),
                             config.dataset_dir)


def check_storage(config: config_lib.PipelineConfig) -> None:
  """Fails with a one-line `storage.StorageError` before anything is written
  if a location in object storage cannot be used: a missing bucket, a key it
  refuses, an unreachable endpoint, no credentials."""
  storage.check_access(config.dataset_dir,
                       write=config.dataset != "contract")
  storage.check_access(config.pipeline_root, write=True)
  storage.check_access(config.serving_dir, write=True)


def _pipeline(config: config_lib.PipelineConfig):
  return pipeline_lib.create_pipeline(
      config,
      metadata_connection_config=pipeline_lib.local_metadata_config(config),
      input_fingerprint=config_lib.fingerprint_directory(config.dataset_dir))


def run(config: config_lib.PipelineConfig,
        nodes: Sequence[str] | None = None) -> None:
  """Checks storage, prepares the input and runs the components.

  Args:
    config: the pipeline's config.
    nodes: if set, only these pipeline nodes run, as a TFX partial run that
      reads the other nodes' outputs from the latest run in the same MLMD
      store (`unfinished_nodes` picks those a stopped run left); None runs
      every node.
  """
  check_storage(config)
  prepare_dataset(config)
  run_options = (tfx_pipeline_lib.RunOptions(from_nodes=list(nodes),
                                             to_nodes=list(nodes))
                 if nodes else None)
  tfx.orchestration.LocalDagRunner().run(_pipeline(config),
                                         run_options=run_options)


def unfinished_nodes(config: config_lib.PipelineConfig) -> list[str]:
  """The nodes the latest run in the config's MLMD store did not complete,
  in pipeline order: what a run stopped midway (killed, out of time) still
  has to run."""
  finished = {component.component for component in
              run_summary.summarize(config.metadata_path).components
              if component.state == "complete"}
  return [node.id for node in _pipeline(config).components
          if node.id not in finished]
