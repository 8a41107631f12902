"""A validated fit under a `tf.distribute` strategy that survives restarts.

`training.fit_best_epoch` fits one epoch per `model.fit` call. Under a
strategy the fit is one `model.fit` over all epochs instead, so that Keras's
`tf.keras.callbacks.BackupAndRestore` can resume it: after every epoch it
checkpoints the model and its optimizer (the learning rate included), and a
job restarted after a worker died resumes at the epoch after the last one
backed up, at most one epoch lost.

What `BackupAndRestore` does not hold, the early stopping's record
(`training.EpochSelection`: every epoch's loss, score, time and rate, the
best epoch's weights, and the caller's per-epoch records), the chief writes
beside it after every epoch (`EpochBackup`) before the checkpoint is taken,
so that every checkpoint has its record; a resumed fit reads the record of
the epoch it resumes after.

Input: each worker builds its own shard of the rows
(`tf.distribute.Strategy.distribute_datasets_from_function`), repeated, and
every epoch is `steps_per_epoch` steps on every worker: a collective step
needs every replica, so no worker may run out of batches before another.

Validation runs on every worker after each epoch on the same weights (the
all-reduced update keeps the replicas equal) and the same validation rows,
so every worker reaches the same early-stopping decision.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from models import training

_STATE = "selection_after_epoch_{}.json"
_WEIGHTS = "best_weights_epoch_{}.npz"
_STATE_PATTERN = re.compile(r"selection_after_epoch_(\d+)\.json$")
_WEIGHTS_PATTERN = re.compile(r"best_weights_epoch_(\d+)\.npz$")


@dataclasses.dataclass(frozen=True)
class DistributedBatches:
  """The training input of a fit under a strategy.

  Attributes:
    strategy: the strategy the model was built under.
    dataset_fn: `tf.distribute.InputContext -> tf.data.Dataset` of this
      input pipeline's repeated per-replica batches
      (`distribute_datasets_from_function`).
    steps_per_epoch: the steps of an epoch, equal on every worker.
    backup_dir: where `BackupAndRestore` and `EpochBackup` keep the last
      epoch; every worker must read the same directory.
    chief: whether this worker writes the epoch record.
  """
  strategy: tf.distribute.Strategy
  dataset_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset]
  steps_per_epoch: int
  backup_dir: str
  chief: bool


def _write(path: str, payload: bytes) -> None:
  with tf.io.gfile.GFile(path, "wb") as out:
    out.write(payload)


class EpochBackup:
  """The early stopping's record of every epoch, beside the checkpoint.

  Args:
    directory: where the records go (under the backup dir).
    chief: whether this worker writes them; every worker reads them.
  """

  def __init__(self, directory: str, chief: bool):
    self.directory = directory
    self.chief = chief

  def save(self, selection: training.EpochSelection, records: list) -> None:
    """Writes the record after the last epoch `selection` holds, and keeps
    only that of the epoch before (which the last checkpoint may be)."""
    if not self.chief:
      return
    tf.io.gfile.makedirs(self.directory)
    epoch = len(selection.scores)
    weights = os.path.join(self.directory,
                           _WEIGHTS.format(selection.best_epoch))
    if not tf.io.gfile.exists(weights):
      buffer = io.BytesIO()
      np.savez(buffer, *selection.best_weights)
      _write(weights, buffer.getvalue())
    _write(os.path.join(self.directory, _STATE.format(epoch)), json.dumps({
        "losses": selection.losses, "scores": selection.scores,
        "seconds": selection.seconds,
        "learning_rates": selection.learning_rates,
        "best_epoch": selection.best_epoch,
        "renewed_epoch": selection.renewed_epoch,
        "records": records}).encode())
    self._prune(epoch)

  def remove(self) -> None:
    """Removes the records once the fit has ended, as `BackupAndRestore`
    removes its checkpoint."""
    if self.chief and tf.io.gfile.exists(self.directory):
      tf.io.gfile.rmtree(self.directory)

  def _prune(self, epoch: int) -> None:
    """Drops the records before `epoch - 1` and the weights no kept record
    names."""
    kept_best = set()
    for name in tf.io.gfile.listdir(self.directory):
      match = _STATE_PATTERN.match(name)
      if not match:
        continue
      path = os.path.join(self.directory, name)
      if int(match.group(1)) < epoch - 1:
        tf.io.gfile.remove(path)
      else:
        with tf.io.gfile.GFile(path) as state:
          kept_best.add(json.load(state)["best_epoch"])
    for name in tf.io.gfile.listdir(self.directory):
      match = _WEIGHTS_PATTERN.match(name)
      if match and int(match.group(1)) not in kept_best:
        tf.io.gfile.remove(os.path.join(self.directory, name))

  def restore(self, epoch: int, selection: training.EpochSelection,
              records: list) -> None:
    """Gives `selection` and `records` the record after `epoch` epochs."""
    with tf.io.gfile.GFile(os.path.join(self.directory,
                                        _STATE.format(epoch))) as state_file:
      state = json.load(state_file)
    for name in ("losses", "scores", "seconds", "learning_rates",
                 "best_epoch", "renewed_epoch"):
      setattr(selection, name, state[name])
    with tf.io.gfile.GFile(os.path.join(
        self.directory, _WEIGHTS.format(state["best_epoch"])), "rb") as saved:
      arrays = np.load(io.BytesIO(saved.read()))
      selection.best_weights = [arrays[f"arr_{index}"]
                                for index in range(len(arrays.files))]
    records[:] = state["records"]


class _SelectingCallback(tf.keras.callbacks.Callback):
  """Validates after each epoch, records it, and stops on patience.

  Listed before `BackupAndRestore`: an epoch's record is written, and its
  plateau decay applied, before the epoch's checkpoint is taken.
  """

  def __init__(self, selection: training.EpochSelection,
               validate: Callable[[int, float], float], backup: EpochBackup,
               records: list):
    super().__init__()
    self.selection = selection
    self.validate = validate
    self.backup = backup
    self.records = records
    self.resumed_after: int | None = None
    self.start = time.perf_counter()
    self.batch_losses: list[float] = []
    self.rate = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    if self.resumed_after is None:
      # The first epoch of this process: past 0, BackupAndRestore restored
      # the model after `epoch` epochs.
      self.resumed_after = epoch
      if epoch:
        self.backup.restore(epoch, self.selection, self.records)
        self.start -= self.selection.seconds[-1]
        logging.info("Resumed from the backup after epoch %d", epoch)
    self.batch_losses.clear()
    self.rate = float(self.model.optimizer.learning_rate.numpy())

  def on_train_batch_end(self, batch, logs=None):
    self.batch_losses.append(float(logs["loss"]))

  def on_epoch_end(self, epoch, logs=None):
    loss = float(np.mean(self.batch_losses))
    score = self.validate(epoch + 1, loss)
    stop = self.selection.end_epoch(self.model, self.rate, loss, score,
                                    time.perf_counter() - self.start)
    self.backup.save(self.selection, self.records)
    if stop:
      self.model.stop_training = True


def fit_best_epoch(model: tf.keras.Model, batches: DistributedBatches,
                   learning_rate: float, epochs: int,
                   validate: Callable[[int, float], float],
                   patience: int | None = None,
                   min_improvement: float = 0.0, lazy_adam: bool = False,
                   plateau_decay: training.PlateauDecay | None = None,
                   epoch_records: list | None = None) -> training.BestEpoch:
  """`training.fit_best_epoch` under `batches.strategy`, resumable.

  Args:
    model: the model to compile and train, built under the strategy's scope.
    batches: the sharded input and the backup.
    learning_rate, epochs, validate, patience, min_improvement, lazy_adam,
      plateau_decay: `training.fit_best_epoch`'s.
    epoch_records: a list `validate` appends one JSON-serialisable record
      to per epoch; a resumed fit restores it with the epochs it resumes
      after.

  Returns:
    The kept epoch; `model` holds its weights. A resumed fit's record holds
    the epochs before the restart too.
  """
  with batches.strategy.scope():
    model.compile(optimizer=training.optimizer(learning_rate, lazy_adam))
  selection = training.EpochSelection(patience, min_improvement, plateau_decay)
  selecting = _SelectingCallback(
      selection, validate,
      EpochBackup(os.path.join(batches.backup_dir, "selection"),
                  batches.chief),
      epoch_records if epoch_records is not None else [])
  model.fit(batches.strategy.distribute_datasets_from_function(
      batches.dataset_fn), epochs=epochs,
            steps_per_epoch=batches.steps_per_epoch, verbose=0,
            callbacks=[selecting, tf.keras.callbacks.BackupAndRestore(
                batches.backup_dir)])
  selecting.backup.remove()
  return selection.kept(model)
