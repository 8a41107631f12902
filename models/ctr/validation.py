"""Validation of a CTR ranker on labelled rows carved from train.

Early stopping must never read the eval split. ExampleGen writes each train
positive with its sampled negatives (`ctr_negatives`: copies with the
positive's user, time and history and another item), so the ranking Trainers
hold out each user's newest train positive (`data.splits.latest_per_user_mask`
over its place in the user's sequence, `models.sequence_inputs`; users with
one positive keep it) together with its negatives, never train on them, and
score the model's click logits on them after every epoch: AUC picks the
epoch, log loss is reported beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping

import numpy as np
from sklearn import metrics
import tensorflow as tf

from data import features
from data import splits
from models import sequence_inputs
from models import train_inputs

METRIC = "auc"
# Validation rows scored at once.
_ROWS_PER_BLOCK = 4096


@dataclasses.dataclass(frozen=True)
class CtrScores:
  """Scores of the click logits on the validation rows.

  Attributes:
    auc: area under the ROC curve (ties count one half).
    log_loss: mean binary cross-entropy of `sigmoid(logit)`; only a
      probability where the logit is calibrated (SEMINAR's is its raw score
      until the Trainer fits Platt scaling after training).
  """
  auc: float
  log_loss: float


def _column(batch: Mapping[str, np.ndarray], name: str) -> np.ndarray:
  return np.reshape(batch[name], [-1])


def held_out_rows(batches: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
  """Marks each user's newest positive and its negatives, in read order.

  The rows are read as the per-user train examples expand
  (`models.user_rows`): each user's together, oldest positive first, each
  positive followed by its own negatives.

  Args:
    batches: the train split's transformed rows in read order, every label:
      `LABEL` and `USER_INDEX`.

  Returns:
    `[n]` bool over the rows.

  Raises:
    ValueError: if there is no negative (ExampleGen wrote no CTR negatives),
      if the rows do not start with a positive, or if a user's rows are not
      all together.
  """
  parts = [(_column(batch, features.LABEL) > 0.5,
            _column(batch, features.USER_INDEX)) for batch in batches]
  positive = np.concatenate([labels for labels, _ in parts])
  users = np.concatenate([users for _, users in parts])
  if positive.all():
    raise ValueError("the train split has only positive examples; a ranking "
                     "family needs ExampleGen's CTR negatives "
                     "(ctr_negatives > 0)")
  if not positive[0]:
    raise ValueError("the train split starts with a negative: each negative "
                     "must follow its positive")
  # Each row's positive: the last one at or before it.
  owner = np.cumsum(positive) - 1
  positive_users = users[positive]
  held_positive = splits.latest_per_user_mask(
      positive_users, sequence_inputs.positions_in_sequences(positive_users))
  return held_positive[owner]


@dataclasses.dataclass(frozen=True)
class HeldOut:
  """The validation rows of a ranking Trainer.

  Attributes:
    mask: `[n]` over the train split's read order (`train_inputs`).
    rows: their transformed features, `LABEL` included.
  """
  mask: np.ndarray
  rows: dict[str, np.ndarray]

  @property
  def positives(self) -> dict[str, np.ndarray]:
    positive = _column(self.rows, features.LABEL) > 0.5
    return {name: values[positive] for name, values in self.rows.items()}


def hold_out(fn_args, tft_output) -> HeldOut:
  """Carves the validation rows out of the Trainer's train split."""
  mask = held_out_rows(train_inputs.ordered_batches(fn_args, tft_output))
  return HeldOut(mask, train_inputs.rows_at(fn_args, tft_output, mask))


class Validator:
  """Scores a ranker's click logits on fixed labelled rows.

  The logits are traced once; each call reads the current weights.

  Args:
    rows: transformed features with `LABEL`, as the ranker reads them.
    logits: transformed features -> `[batch]` click logits.

  Raises:
    ValueError: if the rows do not hold both labels.
  """

  def __init__(self, rows: Mapping[str, np.ndarray],
               logits: Callable[[Mapping[str, tf.Tensor]], tf.Tensor]):
    self.labels = _column(rows, features.LABEL) > 0.5
    if self.labels.all() or not self.labels.any():
      raise ValueError("CTR validation needs positive and negative rows")
    self.rows = {name: np.asarray(values) for name, values in rows.items()}
    self.logits = tf.function(logits)

  def __call__(self) -> CtrScores:
    logits = np.concatenate([
        np.reshape(self.logits({
            name: tf.constant(values[start:start + _ROWS_PER_BLOCK])
            for name, values in self.rows.items()}).numpy(), [-1])
        for start in range(0, len(self.labels), _ROWS_PER_BLOCK)])
    return CtrScores(
        auc=float(metrics.roc_auc_score(self.labels, logits)),
        log_loss=float(metrics.log_loss(
            self.labels, 1.0 / (1.0 + np.exp(-logits.astype(np.float64))),
            labels=[False, True])))
