"""Which `tf.distribute` strategy a Trainer runs under, and who writes.

The Trainer's custom_config names the strategy (`families.DISTRIBUTION_KEY`):

- `NONE` (the default): no strategy; the Trainer runs exactly as it always
  has, one process, its own devices as TensorFlow places ops.
- `MIRRORED`: `tf.distribute.MirroredStrategy`, one replica per local GPU of
  one node (on a CPU-only machine, one replica on the CPU).
- `MULTI_WORKER`: `tf.distribute.MultiWorkerMirroredStrategy` over the
  workers `TF_CONFIG` names, each with its local GPUs (or its CPU).

Batch and learning rate: the config's batch is the global batch. Each of
the `num_replicas_in_sync` replicas trains on `batch / replicas` rows
(`tf.distribute.InputContext.get_per_replica_batch_size`; a batch the
replicas do not divide is refused), each replica's loss is its share of the
global batch's (the two-tower's summed loss as it is, SASRec's mean divided
by the replicas, `sasrec.replica_share`), the optimizer sums the replicas'
gradients, and the learning rate is unchanged. A step then is one process's
step on the same global batch, an epoch as many steps, so the
hyperparameters tuned on one process carry over without a scaling rule
(linear scaling would change them with the worker count). In-batch
negatives stay the global batch's: the two-tower gathers every replica's
positives as each replica's candidates (`gather_replicas`), so a replica's
softmax runs over the same pool as one process's would.

Every worker computes the same thing; only the chief (`is_chief`: TF_CONFIG's
`chief`, else worker 0) writes where others read (the learning curve, the
export, the model info). The others write to a directory of their own
(`write_dir`), removed afterwards (`remove_worker_dir`), the usual pattern of
`MultiWorkerMirroredStrategy` jobs, since saving may take part in collective
ops and so must run on every worker.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Mapping

import tensorflow as tf

from models import families

NONE = "none"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
STRATEGIES = (NONE, MIRRORED, MULTI_WORKER)

# The environment variable the multi-worker strategy reads its cluster from.
TF_CONFIG = "TF_CONFIG"
# Under the Trainer's model_run dir unless `families.BACKUP_DIR_KEY` says
# where: `tf.keras.callbacks.BackupAndRestore`'s checkpoint of the last epoch.
BACKUP_SUBDIR = "backup"


def strategy_name(custom_config: Mapping[str, object] | None) -> str:
  """The strategy named in a Trainer's custom_config; `NONE` when absent.

  Raises:
    ValueError: on a name not in `STRATEGIES`.
  """
  name = (custom_config or {}).get(families.DISTRIBUTION_KEY, NONE)
  if name not in STRATEGIES:
    raise ValueError(f"distribution {name!r}: use one of {STRATEGIES}")
  return name


def create(name: str) -> tf.distribute.Strategy | None:
  """The strategy `name` asks for, or None for `NONE`.

  `MULTI_WORKER` must be created before the process runs any TensorFlow op:
  it sets up the collective ops of the cluster in `TF_CONFIG`.
  """
  if name == MIRRORED:
    return tf.distribute.MirroredStrategy()
  if name == MULTI_WORKER:
    return tf.distribute.MultiWorkerMirroredStrategy()
  return None


def scope(strategy: tf.distribute.Strategy | None):
  """`strategy.scope()`, or no context at all for None."""
  return contextlib.nullcontext() if strategy is None else strategy.scope()


def _task() -> tuple[str | None, int, Mapping[str, object]]:
  """`(task type, task index, cluster)` of this process in `TF_CONFIG`."""
  tf_config = json.loads(os.environ.get(TF_CONFIG) or "{}")
  task = tf_config.get("task", {})
  return task.get("type"), int(task.get("index", 0)), tf_config.get(
      "cluster", {})


def is_chief(custom_config: Mapping[str, object] | None) -> bool:
  """Whether this process writes the Trainer's outputs.

  Only a multi-worker job has processes that do not: there the chief is
  `TF_CONFIG`'s `chief` task, or worker 0 in a cluster without one.
  """
  if strategy_name(custom_config) != MULTI_WORKER:
    return True
  task_type, index, cluster = _task()
  if task_type is None or task_type == "chief":
    return True
  return task_type == "worker" and index == 0 and "chief" not in cluster


def write_dir(directory: str, custom_config: Mapping[str, object] | None
              ) -> str:
  """Where this process writes what belongs in `directory`: `directory`
  itself on the chief, a sibling of its own on every other worker."""
  if is_chief(custom_config):
    return directory
  task_type, index, _ = _task()
  return f"{directory.rstrip('/')}_workertemp_{task_type}_{index}"


def model_run_write_dir(fn_args) -> str:
  """`write_dir` of the Trainer's model_run dir (the learning curve's)."""
  return write_dir(fn_args.model_run_dir, fn_args.custom_config)


def remove_worker_dir(directory: str,
                      custom_config: Mapping[str, object] | None) -> None:
  """Removes what a non-chief worker wrote for `directory`, if anything."""
  written = write_dir(directory, custom_config)
  if written != directory and tf.io.gfile.exists(written):
    tf.io.gfile.rmtree(written)


def backup_dir(fn_args) -> str:
  """Where `BackupAndRestore` keeps the last epoch's state: the
  custom_config's `families.BACKUP_DIR_KEY`, else under the model_run dir.

  Every worker must read the same directory (a bucket on a cluster): a
  restarted job resumes from what the chief backed up there.
  """
  configured = (fn_args.custom_config or {}).get(families.BACKUP_DIR_KEY)
  return str(configured or os.path.join(fn_args.model_run_dir, BACKUP_SUBDIR))


def pipeline_seed(seed: int, context: tf.distribute.InputContext) -> int:
  """The shuffle seed of one input pipeline: `seed` itself for the only one.

  Pipeline `i` of `n` reads rows `i, i + n, ...` of a read order that keeps
  a user's rows together. Shuffled with one seed, every share gets the same
  permutation, so the replicas' batches line up the `n` consecutive rows
  `jn ... jn + n - 1`: mostly one user's. A global batch then holds about
  `1/n` as many users, and each row's in-batch negatives include its own
  user's other rows. A seed per pipeline breaks the alignment.
  """
  return seed * context.num_input_pipelines + context.input_pipeline_id


def gather_replicas(*tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
  """Each tensor's rows from every replica in sync, this replica's first.

  Called in a replica context (a Keras `train_step` under a strategy), it
  all-gathers along axis 0 and rotates the result so that this replica's
  rows come first, in their order: a loss that pairs row `i` with
  candidate `i` (TFRS's `Retrieval`) keeps its labels, and the other
  replicas' rows become extra negatives. The gather is differentiable; its
  gradient reaches each row's own replica. The replicas' row counts may
  differ (a last, smaller batch). Without a strategy, or with one replica,
  the tensors come back unchanged.

  Args:
    *tensors: tensors with the same number of rows (axis 0).

  Returns:
    The gathered tensors, in the order given.
  """
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return tensors
  tensors = tuple(_on_a_device(tensor, context) for tensor in tensors)
  rows = tf.shape(tensors[0])[:1]
  rows_per_replica = context.all_gather(rows, axis=0)
  rows_before = tf.reduce_sum(
      rows_per_replica[:context.replica_id_in_sync_group])
  return tuple(tf.roll(context.all_gather(tensor, axis=0), -rows_before, 0)
               for tensor in tensors)


def _on_a_device(tensor: tf.Tensor, context: tf.distribute.ReplicaContext
                 ) -> tf.Tensor:
  """`tensor`, placed where `all_gather` can see which device it is on.

  A gather's destination is its input's device. Under
  `MultiWorkerMirroredStrategy` with one device per worker, the replica's
  graph runs without a device scope, so its tensors name none, and the
  gather fails ("destinations can not be empty"): place a copy on the
  worker's device. With several local devices each replica runs in its
  device's scope (`MirroredStrategy`'s threads), and nothing is needed.
  """
  devices = context.strategy.extended.worker_devices
  if tensor.device or len(devices) != 1:
    return tensor
  with tf.device(devices[0]):
    return tf.identity(tensor)
