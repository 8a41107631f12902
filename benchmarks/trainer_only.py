"""Trainer-only runs: families' `run_fn` on one pipeline run's Transform output.

A pipeline run costs minutes before its Trainer starts; comparing Trainers
(their wall time, epochs and quality) needs only the Trainer. This benchmark
reads the latest run of a workspace (`vrec run --workspace ...`), builds the
`FnArgs` the TFX Trainer would hand `models.trainer.run_fn` for each named
family in turn, one after the other in this process, and records for each:
wall time (catalogue, validation carve-out, epochs and export included), the
learning curve with its time to 99% of the best validation score (time to
quality), and the exported `evaluate` signature's Recall@10/50/100 and
NDCG@10 on the run's eval split, computed as the pipeline's Evaluator does.
Beside the full-ranking metrics, each export is scored on the sampled 1 + 100
protocol of the SASRec paper (`offline_eval.export_sampled_ranking`: HR@10,
NDCG@10 of the target against 100 items the user never had), for comparison
with published numbers. The run's classical baselines (its Evaluators'
metrics on the same eval split) are printed beside them; the strongest (best
Recall@50) is named and each family is marked by whether it beats it on
Recall@10, Recall@50 and NDCG@10.
The first family pays the process's first Keras `fit`; `--warm-up` trains
one family first, unrecorded, so that each recorded one is a second `fit`.
With several `--seed`s each family is trained once per seed, and the table
ends with each family's mean and standard deviation over them.

    python -m benchmarks.trainer_only --workspace /tmp/ws \
        --family sasrec --family two_tower \
        --output benchmarks/results/trainer_amazon-grocery.json
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from benchmarks import common
from models import families
from models import learning_curve
from models import serving_names
from models import trainer
from offline_eval import export_sampled_ranking
from tfx_pipeline import config as config_lib
from tfx_pipeline.report import run_summary
from tfx_pipeline import retrieval_metrics

TRANSFORMED_EXAMPLES = "Transform.transformed_examples"
TRANSFORM_GRAPH = "Transform.transform_graph"
RAW_EXAMPLES = "InteractionExampleGen.examples"
# Eval examples scored per call of the `evaluate` signature.
_EVAL_BATCH = 2048
_METRICS = ("recall_at_10", "recall_at_50", "recall_at_100", "ndcg_at_10")
# What a model must beat the strongest baseline on, in every seed.
_BEAT_ON = ("recall_at_10", "recall_at_50", "ndcg_at_10")
# The sampled protocol: negatives per target (SASRec's paper), and their seed.
_SAMPLED_NEGATIVES = 100
_SAMPLED_SEED = 0
# Time to quality: seconds until validation first reaches this share of its
# best score.
_QUALITY_FRACTION = 0.99


def fn_args(summary: run_summary.RunSummary, model_uri: str, family: str,
            hparams: dict, seed: int) -> tfx.components.FnArgs:
  """What the pipeline's Trainer hands `run_fn` for `family` in that run.

  Args:
    summary: the pipeline run whose Transform output is trained on.
    model_uri: where the Model artifact goes (`Format-Serving/`,
      `model_run/`).
    family: a family of `models.families`.
    hparams: overrides of the family's defaults.
    seed: the run seed.
  """
  examples = standard_artifacts.Examples()
  examples.uri = summary.artifacts[TRANSFORMED_EXAMPLES]
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  return tfx.components.FnArgs(
      train_files=[io_utils.all_files_pattern(uri) for uri in
                   artifact_utils.get_split_uris([examples], "train")],
      transform_output=summary.artifacts[TRANSFORM_GRAPH],
      serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      model_run_dir=os.path.join(model_uri, "model_run"),
      custom_config={families.FAMILY_KEY: family,
                     families.HPARAMS_KEY: dict(hparams),
                     families.SEED_KEY: seed},
      data_accessor=fn_args_utils.DataAccessor(
          tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
              [examples], []),
          record_batch_factory=None, data_view_decode_fn=None))


def raw_examples(summary: run_summary.RunSummary, split: str) -> list[bytes]:
  """The run's serialized ExampleGen examples of `split`."""
  files = glob.glob(os.path.join(summary.artifacts[RAW_EXAMPLES],
                                 f"Split-{split}", "*.gz"))
  return [record.numpy() for record in
          tf.data.TFRecordDataset(files, compression_type="GZIP")]


@dataclasses.dataclass(frozen=True)
class RunExamples:
  """A run's ExampleGen examples, read once for every family scored on them.

  Attributes:
    eval_serialized: the eval split, serialized, as `evaluate` takes it.
    train: the train split, parsed for the sampled protocol.
    eval: the eval split, parsed for the sampled protocol.
  """
  eval_serialized: list[bytes]
  train: export_sampled_ranking.RawExamples
  eval: export_sampled_ranking.RawExamples


def run_examples(summary: run_summary.RunSummary) -> RunExamples:
  """The run's raw train and eval examples."""
  eval_serialized = raw_examples(summary, "eval")
  return RunExamples(
      eval_serialized,
      export_sampled_ranking.read_examples(raw_examples(summary, "train")),
      export_sampled_ranking.read_examples(eval_serialized))


def eval_metrics(examples: list[bytes], serving_dir: str) -> dict[str, float]:
  """Recall@10/50/100 and NDCG@10 of an export on serialized eval examples."""
  evaluate = tf.saved_model.load(serving_dir).signatures[
      serving_names.EVALUATE]
  ranks = np.concatenate([
      np.reshape(evaluate(examples=tf.constant(
          examples[start:start + _EVAL_BATCH]))[
              serving_names.TARGET_RANK].numpy(), [-1])
      for start in range(0, len(examples), _EVAL_BATCH)])
  metrics = {f"recall_at_{k}": float(retrieval_metrics.recall_at_k(ranks, k)
                                     .mean()) for k in (10, 50, 100)}
  metrics["ndcg_at_10"] = float(retrieval_metrics.ndcg_at_k(ranks, 10).mean())
  return metrics


def train_family(summary: run_summary.RunSummary, directory: str, family: str,
                 hparams: dict, seed: int, examples: RunExamples) -> dict:
  """Runs `family`'s `run_fn` and returns its time, curve and metrics.

  Args:
    summary: the pipeline run trained on.
    directory: where the Model artifact goes.
    family: a family of `models.families`.
    hparams: overrides of its defaults.
    seed: the run seed.
    examples: `run_examples(summary)`.
  """
  args = fn_args(summary, directory, family, hparams, seed)
  started = time.perf_counter()
  trainer.run_fn(args)
  seconds = time.perf_counter() - started
  curve = learning_curve.read(args.model_run_dir)
  return {"family": family, "hparams": hparams, "seed": seed,
          "trainer_seconds": round(seconds, 1),
          "epochs_trained": len(curve.points), "best_epoch": curve.best,
          "seconds_to_99pct_of_best": curve.seconds_to_reach(
              _QUALITY_FRACTION),
          "learning_curve": [
              {"epoch": point.step, "validation": point.validation,
               "train_loss": point.train_loss, "seconds": point.seconds}
              for point in curve.points],
          "metrics": eval_metrics(examples.eval_serialized,
                                  args.serving_model_dir),
          "sampled_1_plus_100": export_sampled_ranking.evaluate(
              args.serving_model_dir, examples.train, examples.eval,
              num_negatives=_SAMPLED_NEGATIVES, seed=_SAMPLED_SEED)}


def seed_summary(runs: list[dict]) -> list[dict]:
  """Each family and hparams' metrics over its seeds: mean, sample std."""
  groups = {}
  for run in runs:
    groups.setdefault((run["family"], json.dumps(run["hparams"])),
                      []).append(run)
  summary = []
  for (family, _), group in groups.items():
    row = {"family": family, "hparams": group[0]["hparams"],
           "seeds": [run["seed"] for run in group]}
    for name in _METRICS:
      values = np.array([run["metrics"][name] for run in group])
      row[name] = {"mean": float(values.mean()),
                   "std": float(values.std(ddof=1)) if len(values) > 1
                   else 0.0}
    summary.append(row)
  return summary


def beats(metrics: dict[str, float], baseline: run_summary.Scorer) -> bool:
  """Whether `metrics` are above `baseline` on every metric of `_BEAT_ON`."""
  return all(metrics[name] > baseline.metrics[name] for name in _BEAT_ON)


def _family_and_hparams(text: str) -> tuple[str, dict]:
  """`sasrec` or `sasrec:{"epochs": 5}` -> (family, hparams)."""
  family, _, hparams = text.partition(":")
  return family, json.loads(hparams) if hparams else {}


def _seconds(value: float | None) -> str:
  return "-" if value is None else f"{value:.1f}"


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workspace", required=True,
                      help="a `vrec run` workspace; its latest run is used")
  parser.add_argument("--pipeline-name", default=None,
                      help="default: the workspace's only pipeline")
  parser.add_argument("--family", action="append", required=True,
                      metavar="FAMILY[:HPARAMS_JSON]",
                      help="a family to train, optionally with hparams as "
                      "JSON, repeatable; trained in the order given")
  parser.add_argument("--warm-up", default="",
                      metavar="FAMILY[:HPARAMS_JSON]",
                      help="train this first, unrecorded")
  parser.add_argument("--seed", type=int, nargs="+", default=[0],
                      help="run seeds; each family is trained once per seed")
  parser.add_argument("--output", required=True, help="JSON path")
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  command = common.command("benchmarks.trainer_only", argv)
  machine_at_start = common.machine()

  names = ([args.pipeline_name] if args.pipeline_name else
           os.listdir(os.path.join(args.workspace, "pipelines")))
  if len(names) != 1:
    raise SystemExit(f"error: name one of the pipelines {names} "
                     "(--pipeline-name)")
  config = config_lib.PipelineConfig(pipeline_name=names[0],
                                     workspace=args.workspace)
  summary = run_summary.summarize(config.metadata_path)
  baselines = [scorer for scorer in
               run_summary.overall_scorers(summary, "model", _METRICS)
               if not scorer.is_model]
  baseline = run_summary.strongest_baseline(baselines, "recall_at_50")
  runs = []

  def write(complete: bool) -> None:
    """Writes the runs so far: a long benchmark stopped midway keeps them."""
    common.write_results(args.output, {
        "command": command, "machine": machine_at_start,
        "workspace": args.workspace, "pipeline": names[0],
        "transformed_examples": summary.artifacts[TRANSFORMED_EXAMPLES],
        "warm_up": args.warm_up, "complete": complete, "runs": runs,
        "over_seeds": seed_summary(runs),
        "baselines": {scorer.label: scorer.metrics for scorer in baselines},
        "strongest_baseline": baseline.label if baseline else None,
        "load_average_end": [round(load, 2) for load in os.getloadavg()],
        "peak_rss_mib": common.peak_rss_mib()})

  examples = run_examples(summary)
  with tempfile.TemporaryDirectory() as scratch:
    if args.warm_up:
      common.log(f"warm-up: {args.warm_up}")
      train_family(summary, os.path.join(scratch, "warm_up"),
                   *_family_and_hparams(args.warm_up), args.seed[0], examples)
    for seed in args.seed:
      for index, text in enumerate(args.family):
        common.log(f"training {text}, seed {seed}")
        run = train_family(
            summary, os.path.join(scratch, f"{seed}_{index}"),
            *_family_and_hparams(text), seed, examples)
        run["beats_strongest_baseline"] = (None if baseline is None else
                                           beats(run["metrics"], baseline))
        runs.append(run)
        write(complete=False)
  rows = [[run["family"], json.dumps(run["hparams"]), str(run["seed"]),
           f"{run['trainer_seconds']:.1f}",
           f"{run['trainer_seconds'] / runs[-1]['trainer_seconds']:.2f}x",
           _seconds(run["seconds_to_99pct_of_best"]),
           f"{run['epochs_trained']} ({run['best_epoch']})",
           *(f"{run['metrics'][name]:.4f}" for name in _METRICS),
           {None: "-", True: "yes", False: "no"}[
               run["beats_strongest_baseline"]],
           f"{run['sampled_1_plus_100']['hr@10']:.4f}",
           f"{run['sampled_1_plus_100']['ndcg@10']:.4f}"]
          for run in runs]
  rows += [[f"{scorer.label} (pipeline run)", "", "", "", "", "", "",
            *(f"{scorer.metrics[name]:.4f}" if name in scorer.metrics
              else "-" for name in _METRICS), "", "", ""]
           for scorer in baselines]
  print(common.aligned_table(
      ["family", "hparams", "seed", "Trainer s", f"vs {runs[-1]['family']}",
       "to 99% s", "epochs (best)", "R@10", "R@50", "R@100", "NDCG@10",
       "beats strongest", "1+100 HR@10", "1+100 NDCG@10"], rows))
  print(f"Baseline of the ratio: the last run, {runs[-1]['family']}. "
        "Strongest baseline (Recall@50): "
        f"{baseline.label if baseline else 'none in the run'}; 'beats' "
        "means above it on Recall@10, Recall@50 and NDCG@10.")
  if len(args.seed) > 1:
    print(common.aligned_table(
        ["family", "hparams", "seeds", *(f"{name} mean ± std" for name in
                                         _METRICS)],
        [[row["family"], json.dumps(row["hparams"]), str(row["seeds"]),
          *(f"{row[name]['mean']:.4f} ± {row[name]['std']:.4f}"
            for name in _METRICS)] for row in seed_summary(runs)]))
  write(complete=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
