"""Tests for the validated fit under a strategy, and its resumption."""

import numpy as np
import pytest
import tensorflow as tf

from models import distributed_fit
from models import training
from models import training_test


class _Crash(Exception):
  """Stands in for a worker dying."""


def _model_and_batches(strategy, backup_dir):
  with strategy.scope():
    model = training_test.MeanSquaredModel()
  rows = {"x": np.arange(8, dtype=np.float32)}
  batches = distributed_fit.DistributedBatches(
      strategy, lambda context: tf.data.Dataset.from_tensor_slices(rows)
      .repeat().batch(context.get_per_replica_batch_size(4)),
      steps_per_epoch=2, backup_dir=backup_dir, chief=True)
  return model, batches


def _fit(backup_dir, scores, crash_at=None, patience=None):
  """A fit of at most 5 epochs validated by `scores[epoch]`; the validation
  raises `_Crash` at `crash_at`. Returns (BestEpoch, epochs validated,
  records, the weight after each epoch)."""
  strategy = tf.distribute.MirroredStrategy()
  model, batches = _model_and_batches(strategy, backup_dir)
  validated, records, weights = [], [], {}

  def validate(epoch, loss):
    if epoch == crash_at:
      raise _Crash()
    validated.append(epoch)
    weights[epoch] = float(model.weight.numpy())
    records.append({"epoch": epoch})
    return scores[epoch]

  best = distributed_fit.fit_best_epoch(
      model, batches, learning_rate=0.1, epochs=5, validate=validate,
      patience=patience, epoch_records=records)
  return best, validated, records, weights, float(model.weight.numpy())


def test_keeps_the_best_epoch_and_stops_on_patience(tmp_path):
  best, validated, _, weights, kept = _fit(
      str(tmp_path), {1: 0.1, 2: 0.5, 3: 0.3, 4: 0.2, 5: 0.9}, patience=2)
  assert validated == [1, 2, 3, 4]
  assert best.epoch == 2 and best.scores == [0.1, 0.5, 0.3, 0.2]
  assert kept == pytest.approx(weights[2])
  # The fit ended: nothing is left to resume from.
  assert not tf.io.gfile.exists(str(tmp_path / "selection"))
  assert not tf.io.gfile.exists(str(tmp_path / "chief"))


def test_a_restarted_fit_resumes_after_the_last_backed_up_epoch(tmp_path):
  scores = {1: 0.1, 2: 0.5, 3: 0.3, 4: 0.2, 5: 0.4}
  with pytest.raises(_Crash):
    _fit(str(tmp_path), scores, crash_at=3)
  best, validated, records, weights, kept = _fit(str(tmp_path), scores)
  # Epochs 1 and 2 were backed up; the restarted fit trains 3 to 5 only,
  # and its record holds all five.
  assert validated == [3, 4, 5]
  assert records == [{"epoch": epoch} for epoch in range(1, 6)]
  assert best.epoch == 2 and best.scores == [0.1, 0.5, 0.3, 0.2, 0.4]
  assert len(best.losses) == len(best.seconds) == 5
  # The best epoch's weights came back from the backup: not the last ones.
  assert kept != pytest.approx(weights[5])


def test_the_backup_keeps_the_last_two_epochs_and_the_weights_they_name(
    tmp_path):
  backup = distributed_fit.EpochBackup(str(tmp_path), chief=True)
  model = training_test.MeanSquaredModel()
  model.compile(optimizer="sgd")
  selection = training.EpochSelection(None, 0.0, None)
  for epoch, score in enumerate([0.5, 0.1, 0.2, 0.3], 1):
    model.weight.assign(float(epoch))
    selection.end_epoch(model, 0.1, 1.0, score, float(epoch))
    backup.save(selection, list(range(1, epoch + 1)))
  assert sorted(tf.io.gfile.listdir(str(tmp_path))) == [
      "best_weights_epoch_1.npz", "selection_after_epoch_3.json",
      "selection_after_epoch_4.json"]
  restored = training.EpochSelection(None, 0.0, None)
  records = []
  backup.restore(3, restored, records)
  assert restored.scores == [0.5, 0.1, 0.2] and records == [1, 2, 3]
  assert restored.best_epoch == 1
  np.testing.assert_array_equal(restored.best_weights, [1.0])
  # Another worker reads the chief's backup and writes nothing.
  distributed_fit.EpochBackup(str(tmp_path / "other"), chief=False).save(
      selection, [])
  assert not tf.io.gfile.exists(str(tmp_path / "other"))
