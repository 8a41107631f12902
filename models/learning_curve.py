"""The learning-curve file a Trainer may write into its ModelRun directory.

`<model_run dir>/learning_curve.json` records how a Trainer chose what it
exported, on a validation split carved from train (never eval): per epoch for
the neural families (early stopping), per hyperparameter value for the
closed-form ones (EASE^R's λ, item-kNN's neighbours and shrinkage). Schema:

    {"family": str, "metric": str,
     "points": [{"step": <epoch or hyperparameter value>,
                 "train_loss": float or null, "validation": float,
                 "seconds": <wall seconds of training so far> or null}],
     "best": <the step picked>, "chosen": {<what was exported>},
     "max_steps": <the epochs allowed, or null for a search>}

The run summary and the HTML report show one table per Trainer that wrote
one, and warn when its best epoch is the last one allowed (`budget_warning`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import tensorflow as tf

FILE_NAME = "learning_curve.json"


@dataclasses.dataclass(frozen=True)
class Point:
  """One step of the search: an epoch, or one hyperparameter setting.

  Attributes:
    step: the epoch, or the value (or setting, in words) tried.
    validation: the validation metric at that step.
    train_loss: the epoch's training loss; None where there is none.
    seconds: wall seconds from the start of training (of a search's fits)
      to the end of this step's validation.
    learning_rate: the rate the epoch trained at; None for a search over
      settings.
    metrics: every validation metric measured at this step, `validation`
      among them (e.g. Recall@10, Recall@50 and NDCG@10 of a retrieval
      Trainer); None where only `validation` was recorded.
  """
  step: Any
  validation: float
  train_loss: Optional[float] = None
  seconds: Optional[float] = None
  learning_rate: Optional[float] = None
  metrics: Optional[dict[str, float]] = None


@dataclasses.dataclass(frozen=True)
class LearningCurve:
  """A Trainer's validation curve and what it chose.

  Attributes:
    family: the model family.
    metric: the validation metric, e.g. `recall_at_50`.
    points: every step, in the order tried.
    best: the step picked.
    chosen: what was exported, e.g. `{"l2": 300.0}` or `{"epoch": 4}`.
    max_steps: the most epochs the Trainer was allowed; None for a search
      over settings.
  """
  family: str
  metric: str
  points: list[Point]
  best: Any
  chosen: dict[str, Any]
  max_steps: Optional[int] = None

  def budget_warning(self) -> Optional[str]:
    """Why the curve may not have converged, or None.

    A Trainer whose best epoch is the last one it was allowed stopped on
    its budget while validation still improved: more epochs would likely
    give a better model.
    """
    if (self.max_steps is None or not self.points
        or len(self.points) < self.max_steps
        or self.best != self.points[-1].step):
      return None
    return (f"the best epoch is the last one allowed ({self.best} of "
            f"epochs={self.max_steps}): validation {self.metric} was still "
            "improving; raise it with --hparam epochs=N")

  @property
  def best_point(self) -> Point:
    """The step picked (`best`)."""
    return next(point for point in self.points if point.step == self.best)

  @property
  def best_validation(self) -> float:
    """The validation score of the step picked (`best`)."""
    return self.best_point.validation

  def seconds_to_reach(self, fraction: float) -> Optional[float]:
    """Time to quality: the seconds until validation first reached
    `fraction` of its best (a metric where higher is better), or None where
    the curve has no times.

    Args:
      fraction: of the best validation score, e.g. 0.99.
    """
    best = max(point.validation for point in self.points)
    reached = next(point for point in self.points
                   if point.validation >= fraction * best)
    return reached.seconds

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, record: dict[str, Any]) -> "LearningCurve":
    return cls(family=record["family"], metric=record["metric"],
               points=[Point(step=point["step"],
                             validation=point["validation"],
                             train_loss=point.get("train_loss"),
                             seconds=point.get("seconds"),
                             learning_rate=point.get("learning_rate"),
                             metrics=point.get("metrics"))
                       for point in record["points"]],
               best=record["best"], chosen=dict(record.get("chosen", {})),
               max_steps=record.get("max_steps"))


def write(model_run_dir: str, curve: LearningCurve) -> str:
  """Writes `curve` into `model_run_dir`; returns the file's path."""
  path = os.path.join(model_run_dir, FILE_NAME)
  tf.io.gfile.makedirs(model_run_dir)
  with tf.io.gfile.GFile(path, "w") as out:
    json.dump(curve.to_json(), out, indent=1)
  return path


def read(model_run_dir: str) -> Optional[LearningCurve]:
  """The curve in `model_run_dir`, or None if its Trainer wrote none."""
  path = os.path.join(model_run_dir, FILE_NAME)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as record:
    return LearningCurve.from_json(json.load(record))
