"""Tests for SASRec's per-sequence training model."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import distribution_testing
from models.retrieval import sasrec
from models.retrieval import sasrec_trainer
from models.retrieval import two_tower_test

_TEMPERATURE = 0.5


def _model(sampled: bool = False, num_uniform_negatives: int = 8):
  tf.keras.utils.set_random_seed(0)
  vocab = two_tower_test.VOCAB
  catalogue = two_tower_test.catalogue_features(vocab)
  config = sasrec.SasRecConfig(embedding_dim=8, tower_units=(8,),
                               num_blocks=1, dropout=0.0,
                               temperature=_TEMPERATURE,
                               num_uniform_negatives=num_uniform_negatives)
  probability = np.full(vocab.items, 1.0 / vocab.items)
  served = sasrec.build_sasrec(vocab, catalogue, probability, config)
  return served, sasrec.SequenceRetrievalModel(
      served.query_tower, served.candidate_tower, catalogue, probability,
      config, sampled)


class _ItemTable(tf.keras.Model):
  """A candidate tower that looks item vectors up in a fixed table."""

  def __init__(self, table):
    super().__init__()
    self.table = tf.constant(table, tf.float32)

  def call(self, inputs):
    return tf.gather(self.table, inputs[features.ITEM_INDEX])


def _table_model(item_vectors, train_probability, use_logq_correction=True):
  """A sampled-softmax model over fixed item vectors, temperature 1."""
  config = sasrec.SasRecConfig(temperature=1.0,
                               use_logq_correction=use_logq_correction)
  return sasrec.SequenceRetrievalModel(
      None, _ItemTable(item_vectors),
      {features.ITEM_INDEX: np.arange(len(item_vectors), dtype=np.int64)},
      np.asarray(train_probability, np.float32), config, sampled=True)


def _windows():
  """Two windows: 1, 2 -> targets 2, 3; and 4 -> target 6, padded."""
  context = tf.constant([[3, 4, 0], [5, 0, 0]], tf.int64)
  return {
      features.HISTORY_ITEM_INDICES: tf.constant([[1, 2, 0], [4, 0, 0]],
                                                 tf.int64),
      features.ITEM_INDEX: tf.constant([[2, 3, 0], [6, 0, 0]], tf.int64),
      features.HOUR_OF_DAY: context,
      features.DAY_OF_WEEK: context,
      features.TIMESTAMP_Z: tf.cast(context, tf.float32),
  }


def _served_request():
  """One served query: history [1, 2] at hour 4 of day 4."""
  return {
      features.HISTORY_ITEM_INDICES: tf.constant([[1, 2]], tf.int64),
      features.HOUR_OF_DAY: tf.constant([4], tf.int64),
      features.DAY_OF_WEEK: tf.constant([4], tf.int64),
      features.TIMESTAMP_Z: tf.constant([4.0])}


def test_loss_is_the_catalogue_softmax_at_every_real_position():
  served, model = _model()
  windows = _windows()
  queries = served.query_tower.every_position(windows).numpy()
  items = served.candidate_tower(
      two_tower_test.catalogue_features()).numpy()[1:]  # No padding.
  expected = []
  for window, position, target in ((0, 0, 2), (0, 1, 3), (1, 0, 6)):
    logits = items @ queries[window, position] / _TEMPERATURE
    expected.append(np.log(np.sum(np.exp(logits))) - logits[target - 1])
  np.testing.assert_allclose(float(model.compute_loss(windows)),
                             np.mean(expected), rtol=1e-5)


def test_sampled_loss_is_corrected_for_the_mixed_proposal():
  # Item indices 0 (padding), 1, 2, 3, 4 (OOV): three real items.
  model = _table_model([[0, 0], [1, 0], [0, 1], [0.6, 0.8], [0, 0]],
                       [0, 0.5, 0.25, 0.25, 0])
  # Two positions with targets 1 and 2, and one uniform draw, item 2: the
  # pool is [1, 2, 2]; the draw is an accidental hit of the second position.
  loss = model.sampled_loss(tf.constant([[1.0, 0.0], [0.0, 1.0]]),
                            tf.constant([1, 2], tf.int64),
                            tf.constant([2], tf.int64))
  # One draw into the pool is item j with probability
  # (2 positions * p_j + 1 draw / 3 items) / 3: 4/9 for item 1, 5/18 for 2,
  # and each logit (the dot product) is reduced by log of that.
  first = 1 - np.log(4 / 9)
  first_negative = 0 - np.log(5 / 18)  # Twice: column 2 and the draw.
  second = 1 - np.log(5 / 18)
  second_negative = 0 - np.log(4 / 9)  # The draw (item 2 again) is masked.
  expected = np.mean([
      np.log(np.exp(first) + 2 * np.exp(first_negative)) - first,
      np.log(np.exp(second) + np.exp(second_negative)) - second])
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_sampled_loss_masks_the_target_wherever_else_it_is_pooled():
  # Both positions want item 1, and both draws are item 1: each position's
  # only unmasked candidate is its own column, so its softmax is certain.
  model = _table_model([[0, 0], [1, 0], [0, 1], [0, 0]], [0, 0.5, 0.5, 0])
  loss = model.sampled_loss(tf.constant([[0.0, 1.0], [0.0, 1.0]]),
                            tf.constant([1, 1], tf.int64),
                            tf.constant([1, 1], tf.int64))
  np.testing.assert_allclose(float(loss), 0.0, atol=1e-6)


@pytest.mark.parametrize("sampled_softmax,num_items,num_positions,expected", [
    (None, 100, 50, False),  # At both bounds: exact.
    (None, 101, 1, True),  # Past the step's memory bound.
    (None, 100, 51, True),  # Past the epoch's logits.
    (False, 101, 51, False),  # Forced either way.
    (True, 100, 50, True),
])
def test_the_catalogue_and_the_epoch_pick_the_softmax_unless_forced(
    sampled_softmax, num_items, num_positions, expected):
  config = sasrec.SasRecConfig(sampled_softmax=sampled_softmax)
  assert sasrec_trainer.uses_sampled_softmax(
      config, num_items, num_positions, max_items=100,
      max_epoch_logits=5_000) is expected


def test_the_shared_logs_train_with_the_exact_softmax_and_a_big_log_does_not():
  # Train target positions and items of the shared logs' default runs
  # (Taobao is the largest: 82k x 55k) and of the 10M x 1M scaling point.
  config = sasrec.SasRecConfig()
  for positions, items in ((52_549, 1_432), (77_849, 8_653), (24_835, 16_532),
                           (81_995, 54_903)):
    assert not sasrec_trainer.uses_sampled_softmax(config, items, positions)
  assert sasrec_trainer.uses_sampled_softmax(config, 1_000_000, 10_000_000)
  assert sasrec_trainer.uses_sampled_softmax(config, 20_000, 1_000_000)


def test_sampled_loss_draws_uniform_items_other_than_padding_and_oov():
  _, model = _model(sampled=True, num_uniform_negatives=64)
  drawn = []
  model.sampled_loss = lambda queries, targets, draws: drawn.append(draws)
  model.compute_loss(_windows())
  draws = drawn[0].numpy()
  # VOCAB.items - 2 real items, indices 1..5: all drawn, nothing else.
  assert set(draws) == set(range(1, two_tower_test.VOCAB.items - 1))


@pytest.mark.parametrize("sampled", [False, True])
def test_training_reduces_the_loss_of_the_served_towers(sampled):
  served, model = _model(sampled)
  windows = _windows()
  before = float(model.compute_loss(windows))
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  model.fit(tf.data.Dataset.from_tensors(windows).repeat(30), verbose=0)
  assert float(model.compute_loss(windows)) < 0.5 * before
  # The served query for history [1, 2] now ranks item 3 first.
  query = served.query_tower(_served_request())
  scores = served.candidate_tower(two_tower_test.catalogue_features()) @ \
      tf.transpose(query)
  assert int(np.argmax(scores.numpy()[1:, 0])) + 1 == 3


def test_the_served_towers_save_after_per_sequence_training(tmp_path):
  served, model = _model()
  request, catalogue = _served_request(), two_tower_test.catalogue_features()
  untrained_query = served.query_tower(request).numpy()
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  model.fit(tf.data.Dataset.from_tensors(_windows()), verbose=0)
  towers = tf.Module()
  towers.query_tower = served.query_tower
  towers.candidate_tower = served.candidate_tower
  tf.saved_model.save(towers, str(tmp_path))
  # The save holds the trained towers: untrained ones of the same seed,
  # restored from it, give the trained ones' vectors.
  restored, _ = _model()
  tf.train.Checkpoint(
      query_tower=restored.query_tower,
      candidate_tower=restored.candidate_tower).read(
          str(tmp_path / "variables" / "variables")
      ).assert_existing_objects_matched()
  trained_query = served.query_tower(request).numpy()
  assert not np.allclose(trained_query, untrained_query)
  np.testing.assert_allclose(restored.query_tower(request), trained_query)
  np.testing.assert_allclose(restored.candidate_tower(catalogue),
                             served.candidate_tower(catalogue))


def test_each_input_pipeline_cuts_its_own_windows_at_its_share_of_positions():
  lengths = np.array([1, 2, 3, 1, 2, 3, 3, 1])
  windows = {
      features.HISTORY_ITEM_INDICES: (np.arange(3) < lengths[:, None]).astype(
          np.int64),
      features.ITEM_INDEX: np.arange(1, 9)[:, None] * (
          np.arange(3) < lengths[:, None])}
  windows.update({name: np.zeros((8, 3), np.int64) for name in
                  sasrec_trainer.SEQUENCE_FEATURES[2:]})
  seen = []
  for context in distribution_testing.input_contexts(2, replicas=2):
    batches = list(sasrec_trainer.sharded_window_batches(
        windows, positions_per_batch=12, seed=0, context=context).take(
            10).as_numpy_iterator())
    # A replica's budget is 6 positions: rows x trimmed width.
    assert max(batch[features.ITEM_INDEX].size for batch in batches) <= 6
    seen.append({int(row[0]) for batch in batches
                 for row in batch[features.ITEM_INDEX]})
  # Windows 1, 3, 5, 7 to the first pipeline, the others to the second;
  # repeated, every one of a share comes back.
  assert seen == [{1, 3, 5, 7}, {2, 4, 6, 8}]
