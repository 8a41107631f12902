"""Training loops over in-memory examples, for offline experiments.

The pipeline's Trainers read TFRecords (`models.trainer`); the offline
benchmarks and notebooks hold their examples as numpy arrays. Every such
experiment trains the same way: Adam at the model config's learning rate,
shuffled batches with a fixed seed, optionally batches of similar sequence
length, optionally keeping the epoch that scores best on validation data.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from models import lazy_adam as lazy_adam_lib

Examples = Mapping[str, np.ndarray]


def shuffled_batches(examples: Examples, batch_size: int, seed: int,
                     drop_remainder: bool = True,
                     map_batch: Callable[[dict], dict] | None = None
                     ) -> tf.data.Dataset:
  """Every example once per epoch, reshuffled each epoch with `seed`.

  Args:
    examples: equally long arrays by feature name.
    batch_size: examples per batch.
    seed: the shuffle seed.
    drop_remainder: drop the last, smaller batch (in-batch negatives make a
      small batch an easier task).
    map_batch: applied to each batch, e.g. to gather features by index.

  Returns:
    The batches, prefetched.
  """
  size = len(next(iter(examples.values())))
  batches = (tf.data.Dataset.from_tensor_slices(dict(examples))
             .shuffle(size, seed=seed)
             .batch(batch_size, drop_remainder=drop_remainder))
  if map_batch is not None:
    batches = batches.map(map_batch)
  return batches.prefetch(tf.data.AUTOTUNE)


def _cut_sorted(order: np.ndarray, widths: np.ndarray, batch_size: int,
                positions_per_batch: int | None) -> list[np.ndarray]:
  """Cuts rows sorted by ascending width into consecutive batches.

  Args:
    order: row indices, sorted by width.
    widths: `[len(order)]` the width of each row of `order` (at least 1).
    batch_size: the most rows per batch.
    positions_per_batch: if set, also the most rows x widest row per batch.

  Returns:
    The batches' row indices.
  """
  if positions_per_batch is None:
    return [order[start:start + batch_size]
            for start in range(0, len(order), batch_size)]
  batches, start = [], 0
  while start < len(order):
    # Widths ascend, so a batch's widest row is its last: take rows while
    # (rows so far) x (their width) stays in the budget.
    end = start + 1
    while (end < len(order) and end - start < batch_size and
           (end + 1 - start) * widths[end] <= positions_per_batch):
      end += 1
    batches.append(order[start:end])
    start = end
  return batches


def length_bucketed_batch_count(sequences: np.ndarray, batch_size: int,
                                positions_per_batch: int | None = None) -> int:
  """How many batches `length_bucketed_batches` cuts `sequences` (its
  `sequence_keys[0]` array) into each pass, whatever the seed."""
  lengths = np.sort(np.sum(sequences != 0, axis=1))
  return len(_cut_sorted(np.arange(len(lengths)), np.maximum(lengths, 1),
                         batch_size, positions_per_batch))


def length_bucketed_batches(examples: Examples, sequence_keys: Sequence[str],
                            batch_size: int, seed: int,
                            positions_per_batch: int | None = None
                            ) -> tf.data.Dataset:
  """Shuffled batches of similar sequence length, trimmed to that length.

  `sequence_keys[0]` holds the item sequences whose padding (0) defines the
  lengths; every array in `sequence_keys` is trimmed along axis 1.

  Most histories are a few items long; padding every batch to the longest
  history would multiply the attention cost several times. Rows are
  right-padded and the models mask padding, so trimming trailing padding
  does not change any output.

  Args:
    examples: equally long arrays by feature name.
    sequence_keys: the right-padded sequence features.
    batch_size: examples per batch; with `positions_per_batch`, the most.
    seed: seeds the grouping and the batch order; a new grouping every epoch.
    positions_per_batch: if set, a batch holds as many rows as fit in this
      many positions (rows x trimmed width), up to `batch_size`: batches of
      short sequences then hold more rows, so an epoch takes fewer steps
      while the largest batch stays as large as without it.

  Returns:
    The batches.
  """
  lengths = np.sum(examples[sequence_keys[0]] != 0, axis=1)
  rng = np.random.default_rng(seed)

  def generate():
    # Sort by length with random tie-breaking, cut into batches, then
    # shuffle the batch order.
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = _cut_sorted(order, np.maximum(lengths[order], 1), batch_size,
                          positions_per_batch)
    for index in rng.permutation(len(batches)):
      rows = batches[index]
      width = max(1, int(lengths[rows].max()))
      yield {name: (values[rows][:, :width] if name in sequence_keys else
                    values[rows]) for name, values in examples.items()}

  signature = {
      name: tf.TensorSpec(
          (None,) + ((None,) if name in sequence_keys else ()) +
          values.shape[1 + (name in sequence_keys):], values.dtype)
      for name, values in examples.items()}
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def fit(model: tf.keras.Model, batches: tf.data.Dataset, learning_rate: float,
        epochs: int, callbacks: Sequence[tf.keras.callbacks.Callback] = ()
        ) -> dict[str, list[float]]:
  """Compiles `model` with Adam and fits it (with Keras `callbacks`);
  returns the loss history."""
  model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate))
  return model.fit(batches, epochs=epochs, verbose=0,
                   callbacks=list(callbacks)).history


@dataclasses.dataclass(frozen=True)
class PlateauDecay:
  """Lowers the learning rate while validation stalls.

  Keras's `ReduceLROnPlateau`, on the early-stopping score: after every
  `after` epochs in a row that do not renew the patience, the optimizer's
  learning rate is multiplied by `factor`. A smaller step lets a curve that
  has stopped rising at one rate climb a little further before the patience
  runs out.

  Attributes:
    factor: in (0, 1); the new rate over the old.
    after: epochs without a renewal before each decay; below the patience,
      or it never acts.
  """
  factor: float
  after: int

  def __post_init__(self):
    if not 0.0 < self.factor < 1.0 or self.after < 1:
      raise ValueError(f"a plateau decay needs 0 < factor < 1 and after >= "
                       f"1, got factor {self.factor}, after {self.after}")


@dataclasses.dataclass(frozen=True)
class BestEpoch:
  """The epoch whose weights a validated fit kept.

  Attributes:
    epoch: 1-based number of the kept epoch.
    score: its validation score.
    losses: the training loss of every epoch trained: the mean of the
      losses its batches report.
    scores: the validation score of every epoch trained.
    seconds: wall seconds from the start of training to the end of each
      epoch's validation, for time to quality.
    learning_rates: the learning rate each epoch trained at.
  """
  epoch: int
  score: float
  losses: list[float]
  scores: list[float]
  seconds: list[float]
  learning_rates: list[float] = dataclasses.field(default_factory=list)


def optimizer(learning_rate: float, lazy_adam: bool = False
              ) -> tf.keras.optimizers.Optimizer:
  """Adam at `learning_rate`, or `lazy_adam.LazyAdam`, whose step updates
  only the embedding rows the batch touched."""
  return (lazy_adam_lib.LazyAdam if lazy_adam else
          tf.keras.optimizers.Adam)(learning_rate)


class EpochSelection:
  """The early-stopping bookkeeping of a validated fit, one epoch at a time.

  Early stopping follows Keras's `EarlyStopping(min_delta=...)`: an epoch
  renews the patience only if it beats the score of the last epoch that
  renewed it by more than `min_improvement`, so a curve that creeps up by
  less than that per epoch still renews it once the creep adds up. The
  weights kept are the best score's, whether or not it renewed the patience.

  Args:
    patience: stop once this many epochs in a row have not renewed it; None
      never stops.
    min_improvement: how much an epoch must beat the score that last renewed
      the patience by to renew it.
    plateau_decay: if set, lowers the learning rate while the patience is
      not renewed.

  Attributes:
    losses, scores, seconds, learning_rates: per epoch recorded so far
      (`BestEpoch`'s).
    best_epoch: the 1-based best epoch so far; 0 before the first.
    best_weights: its trainable weights.
    renewed_epoch: the epoch that last renewed the patience; 0 before the
      first.
  """

  def __init__(self, patience: int | None, min_improvement: float,
               plateau_decay: PlateauDecay | None):
    self.patience = patience
    self.min_improvement = min_improvement
    self.plateau_decay = plateau_decay
    self.losses: list[float] = []
    self.scores: list[float] = []
    self.seconds: list[float] = []
    self.learning_rates: list[float] = []
    self.best_epoch = 0
    self.best_weights: list[np.ndarray] | None = None
    self.renewed_epoch = 0

  def end_epoch(self, model: tf.keras.Model, learning_rate: float,
                loss: float, score: float, seconds: float) -> bool:
    """Records an epoch trained at `learning_rate`; True to stop training.

    Keeps `model`'s trainable weights if the epoch is the best so far, and
    lowers its optimizer's rate on a plateau.
    """
    self.learning_rates.append(learning_rate)
    self.losses.append(loss)
    self.scores.append(score)
    self.seconds.append(seconds)
    epoch = len(self.scores)
    if not self.best_epoch or score > self.scores[self.best_epoch - 1]:
      # Trainable variables only: the others (the catalogue's feature
      # tables) never change in training, and a copy of them would hold a
      # second catalogue in memory.
      self.best_epoch, self.best_weights = epoch, [
          variable.numpy() for variable in model.trainable_variables]
    if (not self.renewed_epoch or score >
        self.scores[self.renewed_epoch - 1] + self.min_improvement):
      self.renewed_epoch = epoch
    elif self.patience is not None and (epoch - self.renewed_epoch >=
                                        self.patience):
      return True
    elif self.plateau_decay and (
        (epoch - self.renewed_epoch) % self.plateau_decay.after == 0):
      model.optimizer.learning_rate.assign(
          learning_rate * self.plateau_decay.factor)
    return False

  def kept(self, model: tf.keras.Model) -> BestEpoch:
    """Gives `model` the best epoch's trainable weights; returns the epoch."""
    for variable, value in zip(model.trainable_variables, self.best_weights):
      variable.assign(value)
    return BestEpoch(self.best_epoch, self.scores[self.best_epoch - 1],
                     self.losses, self.scores, self.seconds,
                     self.learning_rates)


def fit_best_epoch(model: tf.keras.Model, batches: tf.data.Dataset,
                   learning_rate: float, epochs: int,
                   validate: Callable[[int, float], float],
                   patience: int | None = None,
                   min_improvement: float = 0.0,
                   lazy_adam: bool = False,
                   plateau_decay: PlateauDecay | None = None) -> BestEpoch:
  """Fits epoch by epoch and restores the trainable weights of the best one.

  Early stopping is `EpochSelection`'s. `models.distributed_fit` fits the
  same way under a `tf.distribute` strategy.

  Args:
    model: the model to compile (Adam) and train.
    batches: one epoch of training batches.
    learning_rate: Adam's learning rate.
    epochs: the most epochs to train.
    validate: `(epoch, training loss) -> score` on validation data, higher
      is better; called after every epoch.
    patience: stop once this many epochs in a row have not renewed it
      (early stopping); None trains all `epochs`.
    min_improvement: how much an epoch must beat the score that last renewed
      the patience by to renew it; 0 renews it on any better score.
    lazy_adam: train with `lazy_adam.LazyAdam`, whose step updates only the
      embedding rows the batch touched, instead of Adam.
    plateau_decay: if set, lowers the learning rate while the patience is
      not renewed; None keeps it constant.

  Returns:
    The kept epoch (the first of equal scores); `model` holds its weights.
  """
  model.compile(optimizer=optimizer(learning_rate, lazy_adam))
  batch_losses = []
  record_loss = tf.keras.callbacks.LambdaCallback(
      on_train_batch_end=lambda batch, logs: batch_losses.append(
          float(logs["loss"])))
  selection = EpochSelection(patience, min_improvement, plateau_decay)
  start = time.perf_counter()
  for epoch in range(1, epochs + 1):
    batch_losses.clear()
    rate = float(model.optimizer.learning_rate.numpy())
    model.fit(batches, epochs=1, verbose=0, callbacks=[record_loss])
    loss = float(np.mean(batch_losses))
    score = validate(epoch, loss)
    if selection.end_epoch(model, rate, loss, score,
                           time.perf_counter() - start):
      break
  return selection.kept(model)


def predict_in_batches(function: Callable[[dict], tf.Tensor],
                       inputs: Examples, batch_size: int) -> np.ndarray:
  """`function` (traced once per batch shape) over `inputs`, batch by batch.

  Args:
    function: a model or tower taking a dict of batched features.
    inputs: equally long arrays by feature name.
    batch_size: rows per call, bounding memory.

  Returns:
    The outputs of all rows, concatenated along axis 0.
  """
  call = tf.function(function)
  size = len(next(iter(inputs.values())))
  return np.concatenate([
      call({name: tf.constant(values[start:start + batch_size])
            for name, values in inputs.items()}).numpy()
      for start in range(0, size, batch_size)])
