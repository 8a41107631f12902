"""Tests for the in-memory training loops."""

import numpy as np
import pytest
import tensorflow as tf

from models import training


class MeanSquaredModel(tf.keras.Model):
  """One weight trained towards the batch mean of `x`: a known optimum."""

  def __init__(self):
    super().__init__()
    self.weight = tf.Variable(0.0)

  def train_step(self, batch):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(self.weight - batch["x"]))
    self.optimizer.apply_gradients(
        [(tape.gradient(loss, self.weight), self.weight)])
    return {"loss": loss}


def _rows(batches):
  return [{name: values.numpy().tolist() for name, values in batch.items()}
          for batch in batches]


def test_shuffled_batches_drop_the_remainder_and_map_each_batch():
  examples = {"x": np.arange(10)}
  batches = _rows(training.shuffled_batches(
      examples, 4, seed=0, map_batch=lambda batch: {"x": batch["x"] * 10}))
  assert [len(batch["x"]) for batch in batches] == [4, 4]
  seen = sum((batch["x"] for batch in batches), [])
  assert len(set(seen)) == 8 and set(seen) <= set(range(0, 100, 10))


def test_length_bucketed_batches_trim_trailing_padding():
  examples = {"items": np.array([[1, 0, 0], [2, 3, 0], [4, 0, 0], [5, 6, 7]]),
              "target": np.array([10, 11, 12, 13])}
  batches = _rows(training.length_bucketed_batches(examples, ["items"], 2,
                                                   seed=0))
  # Sorted by length: the two one-item rows form one batch, trimmed to
  # width 1; the two longer rows the other, trimmed to the longest, 3.
  widths = {frozenset(batch["target"]): {len(row) for row in batch["items"]}
            for batch in batches}
  assert widths == {frozenset({10, 12}): {1}, frozenset({11, 13}): {3}}


def test_length_bucketed_batches_fill_a_position_budget():
  # Six one-item rows, two of three items, one of four.
  items = np.array([[1, 0, 0, 0]] * 6 + [[1, 2, 3, 0]] * 2 + [[1, 2, 3, 4]])
  examples = {"items": items, "target": np.arange(len(items))}
  batches = _rows(training.length_bucketed_batches(
      examples, ["items"], batch_size=5, seed=0, positions_per_batch=6))
  shapes = sorted((len(batch["items"]), len(batch["items"][0]))
                  for batch in batches)
  # In length order: five one-item rows (the row cap); the sixth and a
  # three-item row (2 x 3 = 6 positions; a third row would need 9); the
  # other three-item row (with the four-item one, 8); the four-item row.
  assert shapes == [(1, 3), (1, 4), (2, 3), (5, 1)]
  assert sorted(sum((batch["target"] for batch in batches), [])) == list(
      range(len(items)))


def test_fit_trains_towards_the_optimum():
  model = MeanSquaredModel()
  history = training.fit(model, training.shuffled_batches(
      {"x": np.full(64, 2.0, np.float32)}, 8, seed=0), learning_rate=0.1,
                         epochs=20)
  assert len(history["loss"]) == 20
  assert history["loss"][-1] < history["loss"][0]
  np.testing.assert_allclose(model.weight.numpy(), 2.0, atol=0.1)


def test_fit_best_epoch_keeps_the_best_validated_weights():
  model = MeanSquaredModel()
  weights_by_epoch = {}
  scores = {1: 0.1, 2: 0.5, 3: 0.3}

  def validate(epoch, loss):
    assert loss >= 0
    weights_by_epoch[epoch] = float(model.weight.numpy())
    return scores[epoch]

  best = training.fit_best_epoch(
      model, training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                       seed=0),
      learning_rate=0.1, epochs=3, validate=validate)
  assert (best.epoch, best.score, len(best.losses)) == (2, 0.5, 3)
  assert best.scores == [0.1, 0.5, 0.3]
  assert float(model.weight.numpy()) == weights_by_epoch[2]
  assert weights_by_epoch[3] != weights_by_epoch[2]


def test_fit_best_epoch_restores_only_the_trainable_variables():
  # Non-trainable variables (a catalogue's feature tables) are not copied
  # at the best epoch: whatever they hold at the end stays.
  model = MeanSquaredModel()
  model.table = tf.Variable([0.0, 0.0], trainable=False)
  weights_by_epoch = {}

  def validate(epoch, loss):
    weights_by_epoch[epoch] = float(model.weight.numpy())
    model.table.assign([float(epoch)] * 2)
    return {1: 0.5, 2: 0.1}[epoch]

  best = training.fit_best_epoch(
      model, training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                       seed=0),
      learning_rate=0.1, epochs=2, validate=validate)
  assert best.epoch == 1
  assert float(model.weight.numpy()) == weights_by_epoch[1]
  np.testing.assert_array_equal(model.table.numpy(), [2.0, 2.0])


def test_fit_best_epoch_stops_after_patience_epochs_without_a_better_score():
  model = MeanSquaredModel()
  weights_by_epoch = {}
  # Epoch 4 ties epoch 2's best score, which does not count as better.
  scores = [0.1, 0.5, 0.3, 0.5, 0.2, 0.9]

  def validate(epoch, loss):
    del loss
    weights_by_epoch[epoch] = float(model.weight.numpy())
    return scores[epoch - 1]

  batches = training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                      seed=0)
  best = training.fit_best_epoch(model, batches, learning_rate=0.1,
                                 epochs=len(scores), validate=validate,
                                 patience=3)
  assert (best.epoch, best.score, best.scores) == (2, 0.5, scores[:5])
  assert float(model.weight.numpy()) == weights_by_epoch[2]
  # Each epoch's loss is the mean over its 4 batches, as they report it.
  assert len(best.losses) == 5 and best.losses[0] > best.losses[-1] > 0


def test_fit_best_epoch_renews_patience_only_on_a_minimum_improvement():
  model = MeanSquaredModel()
  batches = training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                      seed=0)
  # Epochs 2 and 3 beat the best by less than 0.01 each: epoch 3 is kept,
  # but the patience last renewed at epoch 1 runs out after epoch 3.
  creeping = [0.5, 0.505, 0.509, 0.6]
  best = training.fit_best_epoch(model, batches, learning_rate=0.1,
                                 epochs=len(creeping),
                                 validate=lambda epoch, _: creeping[epoch - 1],
                                 patience=2, min_improvement=0.01)
  assert (best.epoch, best.scores) == (3, creeping[:3])
  # Small steps that add up to more than 0.01 renew it (at epoch 3), so
  # training goes on to the better epoch 5.
  adding_up = [0.5, 0.506, 0.512, 0.513, 0.7]
  best = training.fit_best_epoch(model, batches, learning_rate=0.1,
                                 epochs=len(adding_up),
                                 validate=lambda epoch, _: adding_up[epoch - 1],
                                 patience=2, min_improvement=0.01)
  assert (best.epoch, best.score) == (5, 0.7)


def test_plateau_decay_lowers_the_rate_each_time_the_patience_stalls():
  model = MeanSquaredModel()
  batches = training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                      seed=0)
  # Renewals at epochs 1, 2 and 6; stalls of 3 epochs (3-5) and 4 (7-10).
  scores = [0.1, 0.5, 0.4, 0.45, 0.3, 0.8, 0.7, 0.7, 0.6, 0.5, 0.4]
  best = training.fit_best_epoch(
      model, batches, learning_rate=0.4, epochs=len(scores),
      validate=lambda epoch, _: scores[epoch - 1], patience=4,
      plateau_decay=training.PlateauDecay(factor=0.5, after=2))
  # Halved after the 2nd stalled epoch (4, then 8); stopped after the 4th
  # stalled epoch (10), whose patience ran out before a second halving.
  assert best.learning_rates == pytest.approx(
      [0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
  assert (best.epoch, len(best.scores)) == (6, 10)


def test_without_plateau_decay_the_rate_stays_constant():
  model = MeanSquaredModel()
  batches = training.shuffled_batches({"x": np.full(16, 5.0, np.float32)}, 4,
                                      seed=0)
  best = training.fit_best_epoch(model, batches, learning_rate=0.4, epochs=4,
                                 validate=lambda epoch, _: 1.0 / epoch,
                                 patience=3)
  assert best.learning_rates == pytest.approx([0.4] * 4)


@pytest.mark.parametrize("factor,after", [(1.0, 2), (0.0, 2), (0.5, 0)])
def test_plateau_decay_refuses_a_factor_or_wait_that_cannot_decay(factor,
                                                                  after):
  with pytest.raises(ValueError, match="plateau decay"):
    training.PlateauDecay(factor=factor, after=after)


def test_predict_in_batches_covers_every_row_in_order():
  inputs = {"x": np.arange(5, dtype=np.float32)}
  outputs = training.predict_in_batches(lambda batch: 2 * batch["x"], inputs,
                                        batch_size=2)
  np.testing.assert_array_equal(outputs, [0, 2, 4, 6, 8])


def test_length_bucketed_batch_count_is_the_batches_of_a_pass():
  items = np.array([[1, 0, 0, 0]] * 6 + [[1, 2, 3, 0]] * 2 + [[1, 2, 3, 4]])
  examples = {"items": items, "target": np.arange(len(items))}
  for seed in range(3):
    batches = training.length_bucketed_batches(
        examples, ["items"], batch_size=5, seed=seed, positions_per_batch=6)
    assert training.length_bucketed_batch_count(
        items, batch_size=5, positions_per_batch=6) == len(list(batches)) == 4
