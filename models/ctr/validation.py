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
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from sklearn import metrics
import tensorflow as tf

from data import features
from data import splits
from models import sequence_inputs
from models import train_inputs

METRIC = "auc"
# Validation rows scored at once.
_ROWS_PER_BLOCK = 4096
# What ties a negative to its positive: the columns ExampleGen copies.
_POSITIVE_KEY = ("user", "time", "history_length", "newest_history_item")


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


class _KeyRecorder:
  """Passes on the positives of each batch; keeps every row's key and label."""

  def __init__(self, batches: Iterable[Mapping[str, np.ndarray]]):
    self.batches = batches
    self.parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("label",) + _POSITIVE_KEY}

  def positives(self) -> Iterator[dict[str, np.ndarray]]:
    for batch in self.batches:
      history = np.asarray(batch[features.HISTORY_ITEM_INDICES])
      lengths = np.sum(history != features.PADDING_INDEX, axis=1)
      labels = _column(batch, features.LABEL)
      for name, values in (
          ("label", labels), ("user", _column(batch, features.USER_INDEX)),
          ("time", _column(batch, features.TIMESTAMP_Z)),
          ("history_length", lengths),
          ("newest_history_item",
           history[np.arange(len(history)), np.maximum(lengths - 1, 0)])):
        self.parts[name].append(values)
      positive = labels > 0.5
      yield {name: np.asarray(values)[positive]
             for name, values in batch.items()}

  def frame(self) -> pd.DataFrame:
    return pd.DataFrame({name: np.concatenate(parts)
                         for name, parts in self.parts.items()})


def held_out_rows(batches: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
  """Marks each user's newest positive and its negatives, in read order.

  A negative belongs to the held-out positive of its user with the same
  time, history length and newest history item: two positives share these
  only if the user picked the same item twice in a row within one (float32)
  timestamp at the capped history length.

  Args:
    batches: the train split's transformed rows in read order, every label:
      `LABEL`, `USER_INDEX`, `ITEM_INDEX`, `HISTORY_ITEM_INDICES` and
      `sequence_inputs.CONTEXT_FEATURES`.

  Returns:
    `[n]` bool over the rows.

  Raises:
    ValueError: if there is no negative (ExampleGen wrote no CTR negatives).
  """
  recorder = _KeyRecorder(batches)
  placed = sequence_inputs.read_sequence_rows(recorder.positives())
  rows = recorder.frame()
  if not (rows["label"] < 0.5).any():
    raise ValueError("the train split has only positive examples; a ranking "
                     "family needs ExampleGen's CTR negatives "
                     "(ctr_negatives > 0)")
  positive_rows = np.flatnonzero(rows["label"] > 0.5)
  held_positive = positive_rows[
      splits.latest_per_user_mask(placed.users, placed.positions)]
  keys = pd.MultiIndex.from_frame(rows[list(_POSITIVE_KEY)])
  held_out = keys.isin(keys[held_positive]) & (rows["label"] < 0.5).to_numpy()
  held_out[held_positive] = True
  return held_out


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
