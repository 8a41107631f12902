"""Tests for the learning-curve file."""

import json

from models import learning_curve


def test_write_then_read_round_trips_the_schema(tmp_path):
  curve = learning_curve.LearningCurve(
      family="ease", metric="recall_at_50",
      points=[learning_curve.Point(step=10.0, validation=0.31),
              learning_curve.Point(step=100.0, validation=0.35)],
      best=100.0, chosen={"l2": 100.0})
  path = learning_curve.write(str(tmp_path / "run"), curve)
  assert json.loads(open(path, encoding="utf-8").read()) == {
      "family": "ease", "metric": "recall_at_50",
      "points": [{"step": 10.0, "train_loss": None, "validation": 0.31},
                 {"step": 100.0, "train_loss": None, "validation": 0.35}],
      "best": 100.0, "chosen": {"l2": 100.0}}
  assert learning_curve.read(str(tmp_path / "run")) == curve


def test_read_is_none_for_a_trainer_that_wrote_no_curve(tmp_path):
  assert learning_curve.read(str(tmp_path)) is None
