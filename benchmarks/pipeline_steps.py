"""The pipeline's data steps, or the whole pipeline, each in a measured child.

A step is a partial run of the real pipeline (`pipeline.create_pipeline`,
TFX `RunOptions` over that step's nodes, the earlier steps' artifacts taken
from the previous run in the same MLMD store), in a child process of its own
(`python -m benchmarks.scaling --run-step`, `run_step_here`), measured by
`child_process.run_child`: its seconds from MLMD, wall time, peak memory,
CPU time and output bytes. `measure_full_pipeline` runs
`benchmarks.pipeline_benchmark` the same way. Logs come from
`generated_log`. Used by `benchmarks.scaling` and
`benchmarks.catalogue_scaling`.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import sys
import time
from typing import Sequence

from benchmarks import child_process
from benchmarks import common

# The module whose `--run-step` runs one step (`run_step_here`) in a child.
STEP_RUNNER = "benchmarks.scaling"




@dataclasses.dataclass(frozen=True)
class Step:
  """One measured step: the pipeline nodes one child process runs."""
  name: str
  nodes: tuple[str, ...]


# In pipeline order; each step reads what the steps before it wrote. The
# schema import and the validation that Transform waits for take under a
# second together, so they share Transform's process rather than pay for a
# process start of their own; a step's seconds are its main node's.
STEPS = (
    Step("ExampleGen", ("InteractionExampleGen",)),
    Step("StatisticsGen", ("StatisticsGen",)),
    Step("Transform", ("ImportSchemaGen", "ExampleValidator", "AnomaliesGate",
                       "Transform")),
)
def beam_worker_args(workers: int) -> list[str]:
  """The DirectRunner flags for `workers` worker processes."""
  return [f"--direct_num_workers={workers}",
          "--direct_running_mode=multi_processing"]
STEPS_BY_NAME = {step.name: step for step in STEPS}


def _step_config(dataset_dir: str, workspace: str, workers: int,
                 history_length: int = 0):
  """The pipeline's config for one step; `history_length` 0 keeps its own."""
  from tfx_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.PipelineConfig(
      pipeline_name="vrec-scaling", dataset="contract",
      dataset_dir=dataset_dir, workspace=workspace,
      beam_args=beam_worker_args(workers), enable_cache=False)
  if history_length:
    config.examples.history_length = history_length
  return config


def run_step_here(step: Step, dataset_dir: str, workspace: str,
                  workers: int, history_length: int = 0) -> None:
  """Runs `step`'s nodes of the pipeline, in this process (the child)."""
  sys.argv = sys.argv[:1]  # TFX's Beam executors parse sys.argv.
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from tfx.orchestration import pipeline as tfx_pipeline_lib  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  config = _step_config(dataset_dir, workspace, workers, history_length)
  pipeline = pipeline_lib.create_pipeline(
      config,
      metadata_connection_config=pipeline_lib.local_metadata_config(config),
      input_fingerprint=config_lib.fingerprint_directory(dataset_dir))
  nodes = list(step.nodes)
  run_options = tfx_pipeline_lib.RunOptions(from_nodes=nodes, to_nodes=nodes)
  tfx.orchestration.LocalDagRunner().run(pipeline, run_options=run_options)


def _step_seconds(workspace: str, step: Step) -> dict[str, float]:
  """Seconds of each of `step`'s nodes in the newest run, from MLMD."""
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  config = _step_config("unused", workspace, 1)
  summary = run_summary.summarize(config.metadata_path)
  return {run.component: round(run.seconds, 1) for run in summary.components
          if run.component in step.nodes and run.state == "complete"}


def generated_log(data_root: pathlib.Path, size: int, seed: int,
                  time_ordered: bool = False,
                  n_items: int | None = None) -> dict:
  """The log of `size` rows under `data_root`, generated once and reused.

  `time_ordered` writes its rows in time order rather than user by user
  (`data.synthetic.write_log`), in a directory of its own; `n_items` sets
  the catalogue's size apart from the log's (None grows it with the log).

  Returns:
    Its directory, shape, bytes on disk and generation seconds (measured
    when it was generated).
  """
  from data import synthetic  # pylint: disable=g-import-not-at-top
  directory = data_root / (f"log_{size}_seed{seed}"
                           + ("_time_ordered" if time_ordered else "")
                           + (f"_items{n_items}" if n_items else ""))
  record = directory / "generation.json"
  if not record.is_file():
    started = time.time()
    synthetic.write_log(directory, size, seed=seed, time_ordered=time_ordered,
                        n_items=n_items)
    shape = synthetic.LogShape.for_size(size, n_items)
    record.write_text(json.dumps({
        "seconds": round(time.time() - started, 1),
        "users": shape.n_users, "items": shape.n_items,
        "categories": shape.n_categories,
        "bytes": child_process.directory_bytes(directory)}))
  return {"dir": str(directory), **json.loads(record.read_text())}


def measure_steps(dataset_dir: str, size: int, workers: int,
                  workspace: pathlib.Path, budget: child_process.Budget,
                  history_length: int = 0,
                  last_step: Step = STEPS[-1]) -> list[dict]:
  """Runs the steps up to `last_step` on one log with `workers` Beam
  workers, in order.

  A step that fails or is killed ends the sequence: the later steps need
  its output. `history_length` (0: the pipeline's own) caps the history
  each example carries.
  """
  if workspace.exists():
    shutil.rmtree(workspace)
  workspace.mkdir(parents=True)
  config = _step_config(dataset_dir, str(workspace), workers, history_length)
  records = []
  for step in STEPS[:STEPS.index(last_step) + 1]:
    common.log(f"{size:,} rows, {workers} worker(s): {step.name}")
    child = child_process.run_child(
        [sys.executable, "-m", STEP_RUNNER, "--run-step", step.name,
         "--dataset-dir", dataset_dir, "--workspace", str(workspace),
         "--workers", str(workers), "--history-length", str(history_length)],
        workspace / f"{step.name}.log", budget.max_rss_bytes,
        budget.timeout_s())
    node_seconds = (_step_seconds(str(workspace), step)
                    if child.status == "ok" else {})
    seconds = node_seconds.get(step.nodes[-1])
    records.append({
        "size": size, "workers": workers, "step": step.name,
        "history_length": config.examples.history_length,
        "seconds": seconds, "node_seconds": node_seconds,
        **{key: value for key, value in dataclasses.asdict(child).items()
           if key != "output_tail"},
        "output_bytes": sum(child_process.directory_bytes(
            pathlib.Path(config.pipeline_root, node))
                            for node in step.nodes),
        "rows_per_s_per_worker": (round(size / seconds / workers)
                                  if seconds else None),
        "rows_per_cpu_s": (round(size / child.cpu_s)
                           if child.status == "ok" and child.cpu_s else None),
    })
    common.log(f"  {child.status}: {seconds} s in the step, {child.wall_s} s "
               f"wall, peak RSS {child.peak_rss_mib:,.0f} MiB, "
               f"{child.cpu_s} CPU s")
    if child.status != "ok":
      records[-1]["output_tail"] = child.output_tail[-1500:]
      break
  shutil.rmtree(workspace, ignore_errors=True)
  return records


def measure_full_pipeline(dataset_dir: str, size: int,
                          workspace: pathlib.Path,
                          budget: child_process.Budget,
                          timeout_s: float,
                          hparams: Sequence[str] = ("epochs=1",),
                          keep_workspace: bool = False,
                          settings: Sequence[str] = (),
                          resume: bool = False,
                          rerun: Sequence[str] = ()) -> dict:
  """The whole pipeline at one size, as `pipeline_benchmark` runs it.

  `hparams` (`name=value`, the model's) bound its training: one epoch by
  default; `settings` (`key=value`) are the pipeline config's `--set`
  overrides, e.g. Beam's workers. Besides the run's own record it keeps each component's peak RSS
  of the pipeline's process tree while that component ran. The workspace is
  removed afterwards unless `keep_workspace` (to serve the pushed model).
  `resume` continues the run a timeout stopped in the kept `workspace`
  (`pipeline_benchmark --resume`): the record is then of the continuation
  alone, its components' seconds aside; `rerun` nodes, and those downstream,
  run again though finished (`pipeline_benchmark --rerun`).
  """
  if not resume:
    if workspace.exists():
      shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
  output = workspace / "pipeline_benchmark.json"
  common.log(f"{size:,} rows: the whole pipeline, {', '.join(hparams)}")
  timeline = []
  child = child_process.run_child(
      [sys.executable, "-m", "benchmarks.pipeline_benchmark",
       "--dataset", "contract", "--dataset-dir", dataset_dir,
       "--workspace", str(workspace / "run"), "--output", str(output),
       *[arg for hparam in hparams for arg in ("--hparam", hparam)],
       *[arg for setting in settings for arg in ("--set", setting)],
       *(["--resume"] if resume else []),
       *[arg for node in rerun for arg in ("--rerun", node)]],
      workspace / ("pipeline_resumed.log" if resume else "pipeline.log"),
      budget.max_rss_bytes,
      min(timeout_s, budget.timeout_s()), sample_every_s=1.0,
      timeline=timeline)
  result = {"size": size, "hparams": list(hparams),
            "settings": list(settings),
            **{key: value for key, value in dataclasses.asdict(child).items()
               if key != "output_tail"},
            "component_peak_rss_mib": _component_peaks(workspace / "run",
                                                        timeline)}
  if child.status == "ok":
    run = json.loads(output.read_text())
    result.update({key: run[key] for key in (
        "model_family", "wall_seconds", "components", "eval_examples",
        "metrics", "blessed", "pushed_dir")})
    result["pushed"] = bool(run["pushed_dir"])
  else:
    result["output_tail"] = child.output_tail[-1500:]
    result["components"] = _finished_components(workspace / "run")
  common.log(f"  {child.status}: {child.wall_s} s wall, peak RSS "
             f"{child.peak_rss_mib:,.0f} MiB, pushed: {result.get('pushed')}")
  if keep_workspace:
    result["workspace"] = str(workspace / "run")
  else:
    shutil.rmtree(workspace, ignore_errors=True)
  return result


def _component_runs(workspace: pathlib.Path) -> list:
  """The components of the run in a workspace, from MLMD; [] if none."""
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  stores = sorted(workspace.glob("metadata/*/metadata.sqlite"))
  if not stores:
    return []
  return run_summary.summarize(str(stores[0])).components


def _finished_components(workspace: pathlib.Path) -> dict[str, float]:
  """Seconds of the components a stopped pipeline run finished, from MLMD."""
  return {run.component: round(run.seconds, 1)
          for run in _component_runs(workspace) if run.state == "complete"}


def _component_peaks(workspace: pathlib.Path,
                     timeline: Sequence[tuple[float, float]]
                     ) -> dict[str, float]:
  """Each component's peak tree RSS (MiB), over the samples in its run."""
  peaks = {}
  for run in _component_runs(workspace):
    if run.state == "cached":  # a continuation's node, run before
      continue
    inside = [mib for at, mib in timeline
              if run.started <= at <= run.started + run.seconds]
    if inside:
      peaks[run.component] = round(max(inside), 1)
  return peaks
