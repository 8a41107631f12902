"""Tests for early stopping's learning curve."""

import dataclasses
import json
import os

import numpy as np
import pytest

from models import early_stopping
from models import learning_curve
from models.retrieval import two_tower
from models import training
from models import training_test
from models import validation_scores


class _Validator:
  """Replays fixed Recall@50 values, one per call."""

  def __init__(self, recalls):
    self.recalls = iter(recalls)

  def __call__(self):
    recall = next(self.recalls)
    return validation_scores.ValidationScores(
        recall_at_10=recall / 2, recall_at_50=recall, ndcg_at_10=recall / 4)


def test_fit_writes_the_learning_curve_of_every_epoch(tmp_path):
  config = two_tower.TwoTowerConfig(learning_rate=0.1, epochs=6,
                                    early_stopping_patience=2)
  best = early_stopping.fit(
      training_test.MeanSquaredModel(), training.shuffled_batches({"x": np.ones(8, np.float32)}, 4,
                                          seed=0),
      _Validator([0.2, 0.4, 0.3, 0.35, 0.9, 0.9]), config, "two_tower",
      str(tmp_path))
  with open(os.path.join(tmp_path, learning_curve.FILE_NAME)) as record:
    curve = json.load(record)
  assert set(curve) == {"family", "metric", "points", "best", "chosen",
                        "max_steps"}
  assert (curve["family"], curve["metric"]) == ("two_tower", "recall_at_50")
  # The epochs allowed, so that a best epoch at the budget can be warned of.
  assert curve["max_steps"] == config.epochs == 6
  assert curve["best"] == best.epoch == 2
  assert curve["chosen"] == {"epoch": 2}
  assert [point["step"] for point in curve["points"]] == [1, 2, 3, 4]
  assert [point["validation"] for point in curve["points"]] == [0.2, 0.4, 0.3,
                                                                0.35]
  assert [point["train_loss"] for point in curve["points"]] == best.losses
  assert all(set(point) == {"step", "train_loss", "validation", "seconds",
                            "learning_rate", "metrics"}
             for point in curve["points"])
  # Every metric of every epoch, for the run's selection on all three.
  assert [point["metrics"] for point in curve["points"]] == [
      {"recall_at_10": r / 2, "recall_at_50": r, "ndcg_at_10": r / 4}
      for r in (0.2, 0.4, 0.3, 0.35)]
  assert learning_curve.read(str(tmp_path)).best_point.metrics == {
      "recall_at_10": 0.2, "recall_at_50": 0.4, "ndcg_at_10": 0.1}
  assert [point["learning_rate"] for point in curve["points"]] == (
      pytest.approx([0.1] * 4))
  # Time to quality: wall seconds of training so far, growing every epoch.
  seconds = [point["seconds"] for point in curve["points"]]
  assert seconds == best.seconds and 0 < seconds[0] < seconds[1] < seconds[3]


def test_the_curve_records_the_rate_a_plateau_decay_lowered(tmp_path):
  config = two_tower.TwoTowerConfig(learning_rate=0.1, epochs=6,
                                    early_stopping_patience=3)
  early_stopping.fit(
      training_test.MeanSquaredModel(),
      training.shuffled_batches({"x": np.ones(8, np.float32)}, 4, seed=0),
      _Validator([0.2, 0.4, 0.3, 0.35, 0.38, 0.9]), config, "two_tower",
      str(tmp_path), plateau_decay=training.PlateauDecay(factor=0.1, after=1))
  curve = learning_curve.read(str(tmp_path))
  # Epochs 3 and 4 do not renew the patience: each lowers the next rate.
  assert [point.learning_rate for point in curve.points] == pytest.approx(
      [0.1, 0.1, 0.1, 0.01, 0.001])


@dataclasses.dataclass(frozen=True)
class _Loss:
  loss: float


def test_a_loss_keeps_its_lowest_epoch_and_stops_after_patience(tmp_path):
  config = two_tower.TwoTowerConfig(learning_rate=0.1, epochs=6,
                                    early_stopping_patience=2)
  losses = iter([0.9, 0.5, 0.7, 0.6, 0.1, 0.1])
  best = early_stopping.fit(
      training_test.MeanSquaredModel(),
      training.shuffled_batches({"x": np.ones(8, np.float32)}, 4, seed=0),
      lambda: _Loss(next(losses)), config, "courier", str(tmp_path),
      metric="loss", higher_is_better=False)
  curve = learning_curve.read(str(tmp_path))
  assert (curve.family, curve.metric) == ("courier", "loss")
  assert best.epoch == curve.best == 2 and best.score == 0.5
  assert [point.validation for point in curve.points] == [0.9, 0.5, 0.7, 0.6]
