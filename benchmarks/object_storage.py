"""The same pipeline run on local disk and in an S3 bucket: metrics and wall time.

Runs `vrec run` twice from scratch on one dataset, the same seed and flags:
once with a local workspace, once with the dataset, the pipeline root and
the serving base path in a bucket of a local S3 server (moto, started and
stopped here, as the tests do; needs requirements-dev.txt and a checkout).
The bucket run reads the dataset that `vrec import-data NAME s3://...`
uploaded first. Records each run's wall time, per-component seconds (MLMD)
and full-ranking metrics, the bucket/local wall-time ratio, and the upload
time; both runs print the same summary, kept in the JSON.

    python -m benchmarks.object_storage --dataset movielens-100k

Writes `benchmarks/results/object_storage_<dataset>.json` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from tests import object_store
from tfx_pipeline import config as config_lib
from tfx_pipeline import evaluation
from tfx_pipeline.report import run_summary
from transforms import filesystems

# The classical baselines would add two Trainers and Evaluators to each run.
_FLAGS = ("--no-cache", "--no-demo", "--set", "baselines.families=[]")


def _vrec(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
  """Runs `python -m tfx_pipeline ARGV`; returns its wall seconds and stdout."""
  started = time.time()
  finished = subprocess.run([sys.executable, "-m", "tfx_pipeline", *argv],
                            env=env, cwd=cwd, capture_output=True, text=True)
  if finished.returncode:
    raise RuntimeError(f"vrec {' '.join(argv)} failed "
                       f"({finished.returncode}): {finished.stderr[-3000:]}")
  return time.time() - started, finished.stdout


def _summary_text(stdout: str) -> str:
  """The printed run summary: from the timings to the push."""
  return stdout[stdout.index("Pipeline finished"):].split("\nHTML report:")[0]


def _run_result(config: config_lib.PipelineConfig, wall_s: float,
                stdout: str) -> dict:
  summary = run_summary.summarize(config.metadata_path)
  overall = summary.metrics.get("overall", {})
  return {
      "workspace": config.workspace,
      "dataset_dir": config.dataset_dir,
      "wall_seconds": round(wall_s, 1),
      "components": {c.component: round(c.seconds, 1)
                     for c in summary.components},
      "metrics": {name: {
          "model": overall.get(f"{evaluation.MODEL_OUTPUT}/{name}"),
          "most_popular": overall.get(f"{evaluation.BASELINE_OUTPUT}/{name}")}
                  for name in evaluation.metric_names()},
      "blessed": summary.blessed,
      "pushed_dir": summary.pushed_dir,
      "summary": _summary_text(stdout),
  }


def run_benchmark(dataset: str, scratch: str, command: str) -> dict:
  with object_store.start_server() as server:
    store = server.create_store()
    env = store.env()
    dataset_uri = store.uri("datasets", dataset)
    upload_s, _ = _vrec(["import-data", dataset, dataset_uri], env, scratch)

    local = config_lib.PipelineConfig(
        pipeline_name=f"vrec-{dataset}", dataset=dataset,
        workspace=os.path.join(scratch, "workspace"))
    local_s, local_out = _vrec(
        ["run", "--dataset", dataset, "--workspace", local.workspace,
         *_FLAGS], env, scratch)

    bucket = config_lib.PipelineConfig(
        pipeline_name=f"vrec-{dataset}", dataset=dataset,
        dataset_dir=dataset_uri, workspace=store.uri("workspace"),
        metadata_dir=os.path.join(scratch, "bucket_metadata"))
    bucket_s, bucket_out = _vrec(
        ["run", "--dataset", dataset, "--dataset-dir", dataset_uri,
         "--workspace", bucket.workspace,
         "--set", f"metadata_dir={bucket.metadata_dir}", *_FLAGS],
        env, scratch)
    # The bucket run's Evaluator output is read back from the bucket.
    os.environ.update(env)
    filesystems.configure_s3_from_aws_env()
    return {
        "dataset": dataset,
        "command": command,
        "machine": common.machine(),
        "import_data_to_bucket_seconds": round(upload_s, 1),
        "local": _run_result(local, local_s, local_out),
        "bucket": _run_result(bucket, bucket_s, bucket_out),
        "bucket_to_local_wall_ratio": round(bucket_s / local_s, 3),
    }


def format_table(result: dict) -> str:
  local, bucket = result["local"], result["bucket"]
  rows = [["wall seconds", local["wall_seconds"], bucket["wall_seconds"]]]
  rows += [[f"{name} (s)", seconds, bucket["components"].get(name, "-")]
           for name, seconds in local["components"].items()]
  rows += [[f"{name} {scorer}", local["metrics"][name][key],
            bucket["metrics"][name][key]]
           for name in local["metrics"]
           for scorer, key in (("model", "model"),
                               ("most-pop", "most_popular"))]
  return (f"dataset {result['dataset']}: bucket/local wall "
          f"{result['bucket_to_local_wall_ratio']}x; import-data to the "
          f"bucket {result['import_data_to_bucket_seconds']} s\n\n" +
          common.aligned_table(["", "local disk", "S3 bucket"], rows))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dataset", default="movielens-100k",
                      help="an importer name (default: %(default)s)")
  parser.add_argument("--output", default="",
                      help="JSON path (default: "
                      "results/object_storage_<dataset>.json)")
  args = parser.parse_args(argv)
  command = common.command("benchmarks.object_storage", argv)
  with tempfile.TemporaryDirectory(prefix="vrec_object_storage_") as scratch:
    result = run_benchmark(args.dataset, scratch, command)
  print(format_table(result), flush=True)
  common.write_results(
      args.output or common.RESULTS_DIR / f"object_storage_{args.dataset}.json",
      result)
  return 0


if __name__ == "__main__":
  filesystems.exit_process(main())
