"""Early stopping of the neural retrieval Trainers, with their learning curve.

After every epoch the model's towers are scored on validation rows carved
from train (`models.retrieval_validation`); training stops after
`config.early_stopping_patience` epochs without a better Recall@50, the best
epoch's weights are restored for the export, and every epoch's training loss
and validation Recall@50 go to `<model_run dir>/learning_curve.json`
(`models.learning_curve`). The validation rows are never trained on, and the
exported model is the best epoch's, not refitted on them.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from models import learning_curve
from models import retrieval_validation
from models import training

METRIC = "recall_at_50"


def curve(family: str, best: training.BestEpoch) -> learning_curve.LearningCurve:
  """The learning curve of a validated fit: one point per epoch trained."""
  return learning_curve.LearningCurve(
      family=family, metric=METRIC,
      points=[learning_curve.Point(step=epoch, validation=score,
                                   train_loss=loss)
              for epoch, (loss, score) in enumerate(zip(best.losses,
                                                        best.scores), 1)],
      best=best.epoch, chosen={"epoch": best.epoch})


def fit(model: tf.keras.Model, batches: tf.data.Dataset,
        validator: retrieval_validation.Validator, config, family: str,
        model_run_dir: str) -> training.BestEpoch:
  """Fits `model` with early stopping and writes its learning curve.

  Args:
    model: the model to compile (Adam) and train; it ends with the best
      epoch's weights.
    batches: one epoch of training batches, without the validation rows.
    validator: scores the towers that the export will serve.
    config: the family's config: `learning_rate`, `epochs` (the most) and
      `early_stopping_patience`.
    family: the model family, for the curve.
    model_run_dir: the Trainer's ModelRun directory.

  Returns:
    The kept epoch and every epoch's loss and score.
  """
  def validate(epoch: int, loss: float) -> float:
    scores = validator()
    logging.info("%s epoch %d: loss %.4f, validation recall@50 %.4f, "
                 "ndcg@10 %.4f", family, epoch, loss, scores.recall_at_50,
                 scores.ndcg_at_10)
    return scores.recall_at_50

  best = training.fit_best_epoch(model, batches, config.learning_rate,
                                 config.epochs, validate,
                                 patience=config.early_stopping_patience)
  logging.info("%s: kept epoch %d of %d, validation recall@50 %.4f", family,
               best.epoch, len(best.losses), best.score)
  learning_curve.write(model_run_dir, curve(family, best))
  return best
