"""Validation of a pre-training objective: its loss on rows carved from train.

A pre-training Trainer (`courier`, `seminar_psu`) hands its model to
another family, so no served metric scores it; early stopping
(`models.early_stopping`, lower is better) reads the objective itself on the
ranking Trainers' validation rows (`models.ctr.validation`: each user's
newest train positive), which it never trains on.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

METRIC = "loss"


@dataclasses.dataclass(frozen=True)
class LossScores:
  """Attributes: loss: the objective's mean over the validation batches."""
  loss: float


class Validator:
  """The mean loss of a model over fixed validation batches.

  The loss is traced once per batch shape; each call reads the current
  weights. Batches are not reshuffled, so in-batch negatives are the same
  at every epoch.

  Args:
    loss: a batch -> scalar loss, in inference mode (no dropout).
    batches: the validation batches.
  """

  def __init__(self, loss: Callable[[Mapping[str, tf.Tensor]], tf.Tensor],
               batches: tf.data.Dataset):
    self.loss = tf.function(loss)
    self.batches = batches

  def __call__(self) -> LossScores:
    return LossScores(loss=float(np.mean(
        [self.loss(batch).numpy() for batch in self.batches])))
