"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite MLMD."""

from __future__ import annotations

import logging
import os

from tfx import v1 as tfx

from data import contract
from data import importers
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib


def prepare_dataset(config: config_lib.PipelineConfig) -> None:
  """Imports a public dataset into the contract layout, once.

  A user's own contract directory (`dataset == "contract"`) is only
  validated; an importer writes its output under the workspace.
  """
  if config.dataset == "contract":
    contract.load_dataset(config.dataset_dir)
    return
  # Importing again would change the files' mtimes and so bust the cache.
  if not os.path.exists(os.path.join(config.dataset_dir, "interactions.csv")):
    logging.info("Importing %s into %s", config.dataset, config.dataset_dir)
    importers.import_dataset(config.dataset, importers.default_source_root(),
                             config.dataset_dir)


def run(config: config_lib.PipelineConfig) -> None:
  """Prepares the input and runs every component of the pipeline."""
  prepare_dataset(config)
  tfx.orchestration.LocalDagRunner().run(pipeline_lib.create_pipeline(
      config,
      metadata_connection_config=pipeline_lib.local_metadata_config(config),
      input_fingerprint=config_lib.fingerprint_directory(config.dataset_dir)))
