"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, SQLite MLMD.

The dataset, the pipeline root and the serving base path may be in object
storage (`s3://...`); MLMD stays a local SQLite file (`metadata_dir`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Sequence

from apache_beam.options import pipeline_options
from tfx import v1 as tfx
from tfx.orchestration import pipeline as tfx_pipeline_lib

from data import contract
from data import importers
from data import storage
from tfx_pipeline import beam_state_cache
from tfx_pipeline import config as config_lib
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.report import run_summary


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


# The project's setup file, where the repository is checked out (`pip
# install -e`, as the README installs it).
_SETUP_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")
_DIRECT_RUNNERS = ("DirectRunner", "direct", "SwitchingDirectRunner",
                   "BundleBasedDirectRunner")
# TFX's Beam executors skip building a package of TFX when one is set.
_DEPENDENCY_OPTIONS = ("extra_packages", "setup_file", "requirements_file",
                       "sdk_container_image", "worker_harness_container_image")


def local_beam_args(beam_args: Sequence[str]) -> list[str]:
  """The Beam args of a local run: `beam_args` plus, on the DirectRunner,
  the project's setup file as the dependency.

  With no dependency option, every TFX Beam executor rebuilds TFX's own
  installation as a source package to stage to remote workers
  (`tfx.utils.dependency_utils.make_beam_dependency_flags`): a copy of TFX
  and a `setup.py sdist`, seconds per Beam component, and about 49 MB left
  in the temporary directory each time. A day of test suites and benchmarks
  left 48 GB there and filled the disk. The DirectRunner's workers run this
  interpreter, which already has TFX and this project, and it stages
  nothing, so it never reads the option. Other runners, and a run that names
  its own dependency, get `beam_args` unchanged.
  """
  options = pipeline_options.PipelineOptions(list(beam_args))
  runner = options.view_as(pipeline_options.StandardOptions).runner
  every_option = options.get_all_options()
  if (runner not in (None, *_DIRECT_RUNNERS)
      or any(every_option.get(name) for name in _DEPENDENCY_OPTIONS)
      or not os.path.exists(_SETUP_FILE)):
    return list(beam_args)
  return [*beam_args, f"--setup_file={_SETUP_FILE}"]


def _pipeline(config: config_lib.PipelineConfig):
  config = dataclasses.replace(config,
                               beam_args=local_beam_args(config.beam_args))
  return pipeline_lib.create_pipeline(
      config,
      metadata_connection_config=pipeline_lib.local_metadata_config(config),
      input_fingerprint=config_lib.fingerprint_directory(config.dataset_dir))


@dataclasses.dataclass(frozen=True)
class Resumption:
  """How a stopped run goes on: the `nodes` it still has to run, reading
  the other nodes' outputs from the run `base_run_id` of the same MLMD
  store."""
  base_run_id: str
  nodes: list[str]


def run(config: config_lib.PipelineConfig,
        resume: Resumption | None = None) -> None:
  """Checks storage, prepares the input and runs the components.

  Args:
    config: the pipeline's config.
    resume: if set, only its nodes run, as a TFX partial run on its base
      run (`resumption` finds them for a stopped run); None runs every
      node.
  """
  check_storage(config)
  prepare_dataset(config)
  beam_state_cache.disable()
  run_options = (tfx_pipeline_lib.RunOptions(
      from_nodes=list(resume.nodes), to_nodes=list(resume.nodes),
      base_pipeline_run_id=resume.base_run_id) if resume else None)
  tfx.orchestration.LocalDagRunner().run(_pipeline(config),
                                         run_options=run_options)


def resumption(config: config_lib.PipelineConfig,
               rerun: Sequence[str] = ()) -> Resumption:
  """How to continue the runs stopped in the config's MLMD store.

  The base is the run that finished the most nodes (the newest of equals):
  a stopped run may itself have been a partial run, which records the nodes
  it took over as cached, and a run stopped again at its start finishes
  fewer than the one it continued. Every node the base did not finish runs,
  in pipeline order, and so do the `rerun` nodes and every node downstream
  of them (a baseline fitted again after a change to its fit, with its
  Evaluator, the selection and the push).

  Raises:
    LookupError: if the store records no run.
    ValueError: if a `rerun` node is not in the pipeline.
  """
  runs = run_summary.finished_components_by_run(config.metadata_path)
  if not runs:
    raise LookupError(f"no pipeline run recorded in {config.metadata_path}")
  # max keeps the first of equals: the newest, with the runs newest first.
  base_run_id, finished = max(reversed(runs), key=lambda run: len(run[1]))
  components = _pipeline(config).components
  by_id = {node.id: node for node in components}
  unknown = sorted(set(rerun) - set(by_id))
  if unknown:
    raise ValueError(f"no node {unknown} in the pipeline; its nodes: "
                     f"{sorted(by_id)}")
  again, pending = set(), list(rerun)
  while pending:
    node = by_id[pending.pop()]
    if node.id not in again:
      again.add(node.id)
      pending.extend(downstream.id for downstream in node.downstream_nodes)
  return Resumption(base_run_id, [node.id for node in components
                                  if node.id not in finished
                                  or node.id in again])
