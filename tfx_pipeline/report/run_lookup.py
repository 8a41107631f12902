"""Which recorded runs a reading command (summary, report, compare) means.

A command names a pipeline (`--pipeline-name`, or the dataset's default
`vrec-<dataset>`) in a workspace; where the default one has no runs, every
pipeline of the workspace is read, so that a run's flags need not be
repeated to find it.
"""

from __future__ import annotations

import glob
import os

from tfx_pipeline import config as config_lib


def metadata_path(workspace: str, pipeline_name: str) -> str:
  """The MLMD store of a pipeline; an error naming it when there is none."""
  path = config_lib.PipelineConfig(pipeline_name=pipeline_name,
                                   workspace=workspace).metadata_path
  if not os.path.isfile(path):
    raise FileNotFoundError(f"no runs of {pipeline_name} in {workspace} "
                            f"({path} does not exist)")
  return path


def metadata_paths(workspace: str, pipeline_name: str,
                   named: bool) -> tuple[list[str], bool]:
  """The MLMD stores to read, and whether they are the named pipeline's.

  Args:
    workspace: where the runs wrote their MLMD stores.
    pipeline_name: the pipeline asked for.
    named: whether `pipeline_name` was named explicitly; if not, it is only
      a default, and every pipeline's store under the workspace is read when
      it has none.

  Returns:
    The stores, and whether they are `pipeline_name`'s one store.

  Raises:
    FileNotFoundError: naming what is missing, when there is no run.
  """
  path = config_lib.PipelineConfig(pipeline_name=pipeline_name,
                                   workspace=workspace).metadata_path
  if named or os.path.isfile(path):
    return [metadata_path(workspace, pipeline_name)], True
  pattern = os.path.join(os.path.dirname(os.path.dirname(path)), "*",
                         os.path.basename(path))
  found = sorted(glob.glob(pattern))
  if not found:
    raise FileNotFoundError(f"no runs in {workspace} (nothing matches "
                            f"{pattern})")
  return found, False


def latest_runs(workspace: str, pipeline_name: str, named: bool):
  """Yields (pipeline name, summary of its newest run) of each store of
  `metadata_paths`, a header printed before each when the pipelines were
  found, not named."""
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  paths, single = metadata_paths(workspace, pipeline_name, named)
  for path in paths:
    found_name = os.path.basename(os.path.dirname(path))
    if not single:
      print(f"Pipeline {found_name} ({path}), its latest run:", flush=True)
    yield found_name, run_summary.summarize(path)


def evaluation_uri(path: str, pipeline_name: str | None) -> str:
  """`path` if it is an Evaluator output, else its workspace's newest one."""
  from tfx_pipeline.report import tfma_output  # pylint: disable=g-import-not-at-top
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  if os.path.isfile(os.path.join(path, "eval_config.json")):
    return path
  if not pipeline_name:
    metadata_dir = os.path.join(path, "metadata")
    names = (sorted(os.listdir(metadata_dir)) if os.path.isdir(metadata_dir)
             else [])
    if len(names) != 1:
      raise ValueError(
          f"{path} is neither an Evaluator output nor a workspace with one "
          f"pipeline (pipelines: {names or 'none'}; pick one with "
          "--pipeline-name)")
    pipeline_name = names[0]
  return tfma_output.run_evaluation_uri(
      run_summary.summarize(metadata_path(path, pipeline_name)))
