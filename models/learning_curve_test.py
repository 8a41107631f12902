"""Tests for the learning-curve file."""

import json

from models import learning_curve


def test_write_then_read_round_trips_the_schema(tmp_path):
  curve = learning_curve.LearningCurve(
      family="ease", metric="recall_at_50",
      points=[learning_curve.Point(step=10.0, validation=0.31),
              learning_curve.Point(step=100.0, validation=0.35,
                                   metrics={"recall_at_10": 0.12,
                                            "recall_at_50": 0.35})],
      best=100.0, chosen={"l2": 100.0})
  path = learning_curve.write(str(tmp_path / "run"), curve)
  assert json.loads(open(path, encoding="utf-8").read()) == {
      "family": "ease", "metric": "recall_at_50",
      "points": [{"step": 10.0, "train_loss": None, "validation": 0.31,
                  "seconds": None, "learning_rate": None, "metrics": None},
                 {"step": 100.0, "train_loss": None, "validation": 0.35,
                  "seconds": None, "learning_rate": None,
                  "metrics": {"recall_at_10": 0.12, "recall_at_50": 0.35}}],
      "best": 100.0, "chosen": {"l2": 100.0}, "max_steps": None}
  read = learning_curve.read(str(tmp_path / "run"))
  assert read == curve
  assert read.best_point == curve.points[1]


def test_read_is_none_for_a_trainer_that_wrote_no_curve(tmp_path):
  assert learning_curve.read(str(tmp_path)) is None


def _epochs(scores, max_steps):
  best = int(max(range(len(scores)), key=scores.__getitem__)) + 1
  return learning_curve.LearningCurve(
      family="sasrec", metric="recall_at_50",
      points=[learning_curve.Point(step=epoch, validation=score)
              for epoch, score in enumerate(scores, 1)],
      best=best, chosen={"epoch": best}, max_steps=max_steps)


def test_a_best_epoch_that_is_the_last_allowed_is_warned_about():
  warning = _epochs([0.1, 0.2, 0.3], max_steps=3).budget_warning()
  assert warning == ("the best epoch is the last one allowed (3 of "
                     "epochs=3): validation recall_at_50 was still "
                     "improving; raise it with --hparam epochs=N")


def test_no_warning_when_the_curve_stopped_itself_or_has_no_budget():
  # Early stopping ended it before the budget.
  assert _epochs([0.1, 0.3, 0.2], max_steps=5).budget_warning() is None
  # The budget was reached, but an earlier epoch was best.
  assert _epochs([0.1, 0.3, 0.2], max_steps=3).budget_warning() is None
  # A search over settings has no epoch budget.
  assert _epochs([0.1, 0.2, 0.3], max_steps=None).budget_warning() is None


def test_time_to_quality_is_the_first_epoch_within_the_fraction_of_best():
  curve = learning_curve.LearningCurve(
      family="sasrec", metric="recall_at_50",
      points=[learning_curve.Point(step=epoch, validation=score,
                                   seconds=10.0 * epoch)
              for epoch, score in enumerate([0.2, 0.396, 0.397, 0.4], 1)],
      best=4, chosen={"epoch": 4}, max_steps=10)
  # 0.99 x 0.4 = 0.396: epoch 2 reaches it; 0.995 x 0.4 = 0.398 only epoch 4.
  assert curve.seconds_to_reach(0.99) == 20.0
  assert curve.seconds_to_reach(0.995) == 40.0
  assert learning_curve.LearningCurve.from_json(
      curve.to_json()).seconds_to_reach(0.99) == 20.0
