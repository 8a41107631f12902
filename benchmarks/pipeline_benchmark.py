"""Benchmarks one full local pipeline run on a real dataset.

Runs every component from scratch (fresh workspace, no cache; `--resume`
continues a run that stopped midway in its workspace) and records the
wall time per component (from MLMD), the process's peak resident memory and
the full-ranking metrics of every scorer of the run, all from TFMA over the
same eval split: the model, each classical baseline trained in the same run
(`baselines.families`, by default EASE^R and item-kNN) and most-popular. It
names the strongest baseline by Recall@50 and gives the model's ratio to it.

    python -m benchmarks.pipeline_benchmark --dataset movielens-100k
    python -m benchmarks.pipeline_benchmark --dataset amazon-grocery \
        --set examples.split=temporal
    python -m benchmarks.pipeline_benchmark --dataset contract --dataset-dir DIR

Writes `benchmarks/results/pipeline_<dataset>[_<family>][_temporal].json` and
prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from benchmarks import common
from benchmarks import pipeline_summary
from data import importers
from tfx_pipeline import cli
from tfx_pipeline import evaluation
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary

STRONGEST_BY = "recall_at_50"
# The family whose results files carry no family suffix: the two-tower, as
# every file in benchmarks/results was named (a run of `vrec run`'s default
# family elsewhere, e.g. SASRec-class on Grocery, is `_sasrec`).
_UNSUFFIXED_FAMILY = "two_tower"


def _stopped_run(config) -> dict:
  """What the latest run in the workspace completed before it stopped:
  each complete component's seconds, and the wall time from its first
  component's start to its last complete one's end."""
  components = [component for component in
                run_summary.summarize(config.metadata_path).components
                if component.state == "complete"]
  if not components:
    return {"components": {}, "wall_seconds": 0.0}
  return {"components": {c.component: round(c.seconds, 1)
                         for c in components},
          "wall_seconds": round(
              max(c.started + c.seconds for c in components)
              - min(c.started for c in components), 1)}


def run_benchmark(args: argparse.Namespace, command: str) -> dict:
  workspace = args.workspace or tempfile.mkdtemp(prefix="vrec_bench_")
  if args.resume and not args.workspace:
    raise SystemExit("error: --resume needs the stopped run's --workspace")
  if args.rerun and not args.resume:
    raise SystemExit("error: --rerun goes with --resume")
  if not args.resume and os.path.exists(os.path.join(workspace, "pipelines")):
    shutil.rmtree(workspace)
  cli_args = ["--dataset", args.dataset, "--dataset-dir", args.dataset_dir,
              "--workspace", workspace, "--no-cache"]
  if args.model_family:
    cli_args += ["--model-family", args.model_family]
  for hparam in args.hparam:
    cli_args += ["--hparam", hparam]
  for override in args.set:
    cli_args += ["--set", override]
  config = cli.config_from_args(
      cli.build_parser().parse_args(["run"] + cli_args))

  stopped = ({"components": {}, "wall_seconds": 0.0} if not args.resume
             else _stopped_run(config))
  resume = (local_runner.resumption(config, args.rerun) if args.resume
            else None)
  started = time.time()
  local_runner.run(config, resume=resume)
  wall_seconds = stopped["wall_seconds"] + time.time() - started
  summary = run_summary.summarize(config.metadata_path)

  overall = summary.metrics.get("overall", {})
  metrics = {}
  for name in evaluation.metric_names():
    model = overall.get(f"{evaluation.MODEL_OUTPUT}/{name}")
    baseline = overall.get(f"{evaluation.BASELINE_OUTPUT}/{name}")
    metrics[name] = {"model": model, "most_popular": baseline,
                     "ratio": model / baseline if model and baseline else None}
  scorers = run_summary.overall_scorers(summary, config.model_family,
                                        evaluation.metric_names())
  strongest = run_summary.strongest_baseline(scorers, STRONGEST_BY)
  return {
      "dataset": args.dataset,
      "model_family": config.model_family,
      "split": summary.split or config.examples.split,
      "config_overrides": args.set,
      "hparam_overrides": config.hparams,
      "command": command,
      "machine": common.machine(),
      "wall_seconds": round(wall_seconds, 1),
      # Beam's in-memory runner and the Trainer run in this process, so this
      # is the whole pipeline's peak.
      "peak_rss_mib": round(common.peak_rss_mib(), 1),
      # A continuation records the nodes it took over as cached: their
      # seconds are the stopped run's.
      "components": {**stopped["components"],
                     **{c.component: round(c.seconds, 1)
                        for c in summary.components
                        if c.state != "cached"}},
      # Set when the run continued a stopped one: the nodes it ran, the run
      # it read the others' outputs from, and the stopped run's part of
      # `wall_seconds`.
      "resumed": ({"nodes": resume.nodes, "base_run_id": resume.base_run_id,
                   "stopped_run_wall_seconds": stopped["wall_seconds"]}
                  if resume else None),
      "eval_examples": overall.get(f"{evaluation.MODEL_OUTPUT}/example_count"),
      "metrics": metrics,
      # Every scorer of the run, same eval split and TFMA metrics.
      "scorers": {scorer.label: scorer.metrics for scorer in scorers},
      "strongest_baseline": strongest.label if strongest else None,
      "verdict": run_summary.baseline_verdict(scorers, STRONGEST_BY),
      "blessed": summary.blessed,
      "pushed_dir": summary.pushed_dir,
      # What ModelSelector pushed, by validation: None without selection.
      "selection": summary.selection.to_json() if summary.selection else None,
  }


def format_table(result: dict) -> str:
  components = common.aligned_table(
      ["component", "seconds"], [[name, f"{seconds:.1f}"] for name, seconds
                                 in result["components"].items()])
  names = list(result["metrics"])
  scorers = pipeline_summary.scorers(result)
  metrics = common.aligned_table(
      ["scorer"] + names,
      [[label] + [row.get(name) for name in names]
       for label, row in scorers.items()])
  return (f"dataset {result['dataset']} ({result['split']} split): wall "
          f"{result['wall_seconds']} s, peak RSS {result['peak_rss_mib']} MiB, "
          f"{int(result['eval_examples'] or 0)} eval examples\n\n"
          f"{components}\n\n{metrics}\n\n{result['verdict']}")


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS),
                               "movielens-100k")
  parser.add_argument("--workspace", default="",
                      help="fresh workspace to use (default: a temp dir)")
  parser.add_argument("--model-family", default=None,
                      help="a model family (default: `vrec run`'s for the "
                      "dataset)")
  parser.add_argument("--hparam", action="append", default=[],
                      metavar="KEY=VALUE")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a PipelineConfig override, as `vrec run --set`")
  parser.add_argument("--output", default="",
                      help="JSON path (default: results/pipeline_<dataset>.json)")
  parser.add_argument("--resume", action="store_true",
                      help="continue the workspace's latest run, one that "
                      "stopped midway: run only the components it did not "
                      "complete (a TFX partial run reading the others' "
                      "outputs); components' seconds cover both runs and "
                      "the wall time adds the stopped run's span")
  parser.add_argument("--rerun", action="append", default=[], metavar="NODE",
                      help="with --resume: run this node again, and every "
                      "node downstream of it, though the stopped run "
                      "finished it")
  args = parser.parse_args(argv)
  command = common.command("benchmarks.pipeline_benchmark", argv)
  sys.argv = sys.argv[:1]  # TFX's Beam executors parse sys.argv.

  result = run_benchmark(args, command)
  family = result["model_family"]
  suffix = "" if family == _UNSUFFIXED_FAMILY else f"_{family}"
  if result["split"] != "leave_last_out":
    suffix += f"_{result['split']}"
  output = args.output or (
      common.RESULTS_DIR /
      f"pipeline_{common.dataset_label(args.dataset, args)}{suffix}.json")
  print(format_table(result))
  common.write_results(output, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
