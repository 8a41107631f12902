"""A retrieval Trainer in a process of its own, for the tests and benchmark
of training under `tf.distribute` (`models.distribution`).

    python -m models.distribution_testing --family two_tower \\
        --model-dir DIR --distribution multi_worker [--epochs N]

trains `--family` (`two_tower` or `sasrec`) on `clustered_sequences` through
the family's Trainer, in-memory (`models.trainer_testing`), with the strategy
named and `TF_CONFIG` as the environment sets it. The Trainer writes its
learning curve under `DIR/model_run` and its export under `DIR/serving`.
Every worker of a job is handed the same `DIR`, as workers share a bucket.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from data import features
from models import distribution
from models import export_testing
from models import families
from models import trainer_testing

_MODULE = "models.distribution_testing"
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small towers and batches: seconds per epoch on a shared CPU.
HPARAMS = {"embedding_dim": 16, "tower_units": [16], "batch_size": 64,
           "num_uniform_negatives": 16, "early_stopping_patience": 100}
SASREC_HPARAMS = {"embedding_dim": 16, "tower_units": [16], "num_blocks": 1,
                  "positions_per_batch": 128, "early_stopping_patience": 100}


def clustered_sequences(num_users: int, num_clusters: int,
                        items_per_cluster: int, length: int, seed: int
                        ) -> dict[int, list[int]]:
  """Each user (1..`num_users`) picks `length` distinct items of one cluster,
  so a history tells which items may come next, not which one.

  Cluster c holds items `c * items_per_cluster + 1 ...`; user u's is
  `u % num_clusters`.
  """
  rng = np.random.default_rng(seed)
  return {user: (rng.choice(items_per_cluster, length, replace=False) + 1 +
                 (user % num_clusters) * items_per_cluster).tolist()
          for user in range(1, num_users + 1)}


def _transform(raw: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """`export_testing.fake_transform` plus the context and item features the
  two-tower towers read, all padding."""
  transformed = export_testing.fake_transform(raw)
  rows = tf.shape(transformed[features.ITEM_INDEX])[0]
  return {**transformed,
          features.HOUR_OF_DAY: tf.zeros([rows], tf.int64),
          features.DAY_OF_WEEK: tf.zeros([rows], tf.int64),
          features.TIMESTAMP_Z: tf.zeros([rows], tf.float32),
          features.TITLE_TOKEN_INDICES: tf.zeros(
              [rows, features.TITLE_LENGTH], tf.int64),
          features.CATEGORY_INDICES: tf.zeros(
              [rows, features.CATEGORY_LENGTH], tf.int64)}


def train(family: str, model_dir: str, distribution: str,
          hparams: Mapping[str, object], sequences: Mapping[int, Sequence[int]],
          seed: int = 0) -> None:
  """Runs `family`'s Trainer on `sequences` under `distribution`."""
  num_items = max(max(items) for items in sequences.values())
  fn_args = trainer_testing.fn_args(
      {trainer_testing.TRAIN: trainer_testing.positive_rows(sequences)},
      model_dir, seed=seed)
  fn_args.custom_config[families.DISTRIBUTION_KEY] = distribution
  tft_output = trainer_testing.TransformOutput(
      trainer_testing.vocabularies(len(sequences), num_items, num_tokens=8),
      _transform, export_testing.RAW_FEATURE_SPEC)
  spec = families.get(family)
  families.load(spec.train)(fn_args, tft_output, dict(hparams), spec)


def input_contexts(pipelines: int, replicas: int
                   ) -> list[tf.distribute.InputContext]:
  """The `InputContext` of each of `pipelines` input pipelines (one per
  worker) feeding `replicas` replicas in all."""
  return [tf.distribute.InputContext(num_input_pipelines=pipelines,
                                     input_pipeline_id=pipeline,
                                     num_replicas_in_sync=replicas)
          for pipeline in range(pipelines)]


# Two logical CPUs must be configured before TensorFlow starts: a script
# that needs them runs in a process of its own, after this prologue.
_TWO_LOGICAL_CPUS = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
"""


def run_on_two_logical_cpus(script: str):
  """Runs `script` under a two-replica `strategy` on two logical CPUs, in a
  Python process of its own (`json` and `tf` imported), and returns the JSON
  value its last printed line holds.

  Raises:
    AssertionError: the process failed (with the end of its stderr).
  """
  result = subprocess.run([sys.executable, "-c", _TWO_LOGICAL_CPUS + script],
                          capture_output=True, text=True, check=False,
                          cwd=_REPO_ROOT)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def free_ports(count: int) -> list[int]:
  """`count` localhost ports that were free a moment ago."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for each in sockets:
      each.bind(("localhost", 0))
    return [each.getsockname()[1] for each in sockets]
  finally:
    for each in sockets:
      each.close()


def worker_command() -> list[str]:
  """The command line that runs `main`, before its flags."""
  return [sys.executable, "-m", _MODULE]


def worker_environment(tf_config: Mapping[str, object] | None
                       ) -> dict[str, str]:
  """This process's environment with the repository importable and
  `TF_CONFIG` set to `tf_config` (removed for None)."""
  environment = dict(os.environ, PYTHONPATH=_REPO_ROOT)
  environment.pop(distribution.TF_CONFIG, None)
  if tf_config is not None:
    environment[distribution.TF_CONFIG] = json.dumps(tf_config)
  return environment


def start_workers(count: int, args: Sequence[str], log_dir: str
                  ) -> list[subprocess.Popen]:
  """Starts `count` local workers of one multi-worker job running `main`.

  Each gets `TF_CONFIG` with the cluster on fresh localhost ports and its
  index; worker 0 is the chief.

  Args:
    count: the workers.
    args: `main`'s flags, `--distribution multi_worker` among them.
    log_dir: where the logs go (`worker_log`).

  Returns:
    The worker processes, in index order.
  """
  cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
  os.makedirs(log_dir, exist_ok=True)
  workers = []
  for index in range(count):
    with open(worker_log(log_dir, index), "w") as log:
      workers.append(subprocess.Popen(
          [*worker_command(), *args], cwd=_REPO_ROOT,
          env=worker_environment({"cluster": cluster, "task": {
              "type": "worker", "index": index}}),
          stdout=log, stderr=subprocess.STDOUT))
  return workers


def worker_log(log_dir: str, index: int) -> str:
  """Where `start_workers` logs worker `index`."""
  return os.path.join(log_dir, f"worker_{index}.log")


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--family", choices=("two_tower", "sasrec"),
                      required=True)
  parser.add_argument("--model-dir", required=True)
  parser.add_argument("--distribution", required=True)
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--users", type=int, default=400)
  parser.add_argument("--clusters", type=int, default=40)
  parser.add_argument("--items-per-cluster", type=int, default=10)
  parser.add_argument("--length", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num-uniform-negatives", type=int, default=None,
                      help="two-tower: overrides HPARAMS' uniform negatives")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO)
  hparams = dict(SASREC_HPARAMS if args.family == "sasrec" else HPARAMS,
                 epochs=args.epochs)
  if args.num_uniform_negatives is not None:
    hparams["num_uniform_negatives"] = args.num_uniform_negatives
  train(args.family, args.model_dir, args.distribution, hparams,
        clustered_sequences(args.users, args.clusters,
                            args.items_per_cluster, args.length, 0),
        seed=args.seed)
  logging.info("Trainer done in process %d", os.getpid())


if __name__ == "__main__":
  main()
