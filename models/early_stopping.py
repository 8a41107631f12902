"""Early stopping of the neural Trainers, with their learning curve.

After every epoch the model is scored on validation rows carved from train:
the retrieval families by full-catalogue Recall@50
(`models.retrieval.validation`), the CTR rankers by AUC
(`models.ctr.validation`), the pre-training families by their own loss
(`models.loss_validation`). Training stops after
`config.early_stopping_patience` epochs without a better score (better by
more than `min_improvement`, where a family sets one), the best
epoch's weights are restored for the export, and every epoch's training loss
and validation score go to `<model_run dir>/learning_curve.json`
(`models.learning_curve`). The validation rows are never trained on, and the
exported model is the best epoch's, not refitted on them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import tensorflow as tf

from models import distributed_fit
from models import learning_curve
from models import training
from models import validation_scores

METRIC = validation_scores.SELECTION_METRIC


def curve(family: str, best: training.BestEpoch, metric: str = METRIC,
          max_epochs: int | None = None,
          metrics: list[dict[str, float]] | None = None
          ) -> learning_curve.LearningCurve:
  """The learning curve of a validated fit: one point per epoch trained, of
  at most `max_epochs`, with every epoch's validation `metrics` if given."""
  epochs = len(best.losses)
  return learning_curve.LearningCurve(
      family=family, metric=metric,
      points=[learning_curve.Point(step=epoch, validation=score,
                                   train_loss=loss, seconds=seconds,
                                   learning_rate=rate, metrics=measured)
              for epoch, (loss, score, seconds, rate, measured) in enumerate(
                  zip(best.losses, best.scores, best.seconds,
                      best.learning_rates or [None] * epochs,
                      metrics or [None] * epochs), 1)],
      best=best.epoch, chosen={"epoch": best.epoch}, max_steps=max_epochs)


def _described(scores: Any) -> str:
  return ", ".join(f"{name} {value:.4f}"
                   for name, value in dataclasses.asdict(scores).items())


def fit_with_curve(model: tf.keras.Model,
                   batches: tf.data.Dataset | distributed_fit.DistributedBatches,
                   validator: Callable[[], Any], config, family: str,
                   metric: str = METRIC, higher_is_better: bool = True,
                   min_improvement: float = 0.0, lazy_adam: bool = False,
                   plateau_decay: training.PlateauDecay | None = None
                   ) -> tuple[training.BestEpoch,
                              learning_curve.LearningCurve]:
  """Fits `model` with early stopping; returns the kept epoch and the curve.

  Args:
    model: the model to compile (Adam) and train; it ends with the best
      epoch's weights.
    batches: one epoch of training batches, without the validation rows;
      or under a `tf.distribute` strategy, the sharded input of
      `distributed_fit.fit_best_epoch`.
    validator: `() -> scores`, a dataclass of the current model's
      validation metrics, `metric` among them.
    config: the family's config: `learning_rate`, `epochs` (the most) and
      `early_stopping_patience`.
    family: the model family, for the curve.
    metric: the field of the scores that picks the epoch.
    higher_is_better: False for a loss.
    min_improvement: how much better than the score that last renewed the
      patience an epoch must be to renew it (`training.fit_best_epoch`).
    lazy_adam: train with lazy Adam (`training.fit_best_epoch`).
    plateau_decay: lowers the learning rate while validation stalls
      (`training.fit_best_epoch`); None keeps it constant.

  Returns:
    The kept epoch with every epoch's loss and score (as measured, whatever
    the direction), and its learning curve.
  """
  sign = 1.0 if higher_is_better else -1.0
  # Every epoch's metrics, for the curve: the run selects what it pushes on
  # more than the one metric that picks the epoch.
  measured = []

  def validate(epoch: int, loss: float) -> float:
    scores = validator()
    measured.append(dataclasses.asdict(scores))
    logging.info("%s epoch %d: loss %.4f, validation %s", family, epoch, loss,
                 _described(scores))
    return sign * getattr(scores, metric)

  settings = dict(patience=config.early_stopping_patience,
                  min_improvement=min_improvement, lazy_adam=lazy_adam,
                  plateau_decay=plateau_decay)
  if isinstance(batches, distributed_fit.DistributedBatches):
    signed = distributed_fit.fit_best_epoch(
        model, batches, config.learning_rate, config.epochs, validate,
        epoch_records=measured, **settings)
  else:
    signed = training.fit_best_epoch(model, batches, config.learning_rate,
                                     config.epochs, validate, **settings)
  best = dataclasses.replace(signed, score=sign * signed.score,
                             scores=[sign * score for score in signed.scores])
  logging.info("%s: kept epoch %d of %d, validation %s %.4f", family,
               best.epoch, len(best.losses), metric, best.score)
  return best, curve(family, best, metric, config.epochs, measured)


def fit(model: tf.keras.Model,
        batches: tf.data.Dataset | distributed_fit.DistributedBatches,
        validator: Callable[[], Any], config, family: str,
        model_run_dir: str, metric: str = METRIC,
        higher_is_better: bool = True, min_improvement: float = 0.0,
        lazy_adam: bool = False,
        plateau_decay: training.PlateauDecay | None = None
        ) -> training.BestEpoch:
  """`fit_with_curve`, writing the curve into the Trainer's ModelRun dir.

  Args:
    model: the model to compile (Adam) and train; it ends with the best
      epoch's weights.
    batches: one epoch of training batches, without the validation rows,
      or their sharded input under a strategy (`fit_with_curve`).
    validator: scores the model on the validation rows (see
      `fit_with_curve`), e.g. a `retrieval_validation.Validator` of the
      towers that the export will serve.
    config: the family's config: `learning_rate`, `epochs` (the most) and
      `early_stopping_patience`.
    family: the model family, for the curve.
    model_run_dir: the Trainer's ModelRun directory.
    metric: the field of the scores that picks the epoch.
    higher_is_better: False for a loss.
    min_improvement, lazy_adam, plateau_decay: see `fit_with_curve`.

  Returns:
    The kept epoch and every epoch's loss and score.
  """
  best, learning = fit_with_curve(model, batches, validator, config, family,
                                  metric, higher_is_better, min_improvement,
                                  lazy_adam, plateau_decay)
  learning_curve.write(model_run_dir, learning)
  return best
