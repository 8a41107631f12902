"""Tests for SASRec's per-sequence training model."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import sasrec
from models import sasrec_trainer
from models import two_tower_test

_TEMPERATURE = 0.5


def _model(sampled_negatives: int = 0):
  tf.keras.utils.set_random_seed(0)
  vocab = two_tower_test.VOCAB
  catalogue = two_tower_test.catalogue_features(vocab)
  config = sasrec.SasRecConfig(embedding_dim=8, tower_units=(8,),
                               num_blocks=1, dropout=0.0,
                               temperature=_TEMPERATURE)
  served = sasrec.build_sasrec(vocab, catalogue,
                               np.full(vocab.items, 1.0 / vocab.items), config)
  return served, sasrec_trainer.SequenceRetrievalModel(
      served.query_tower, served.candidate_tower, catalogue, _TEMPERATURE,
      sampled_negatives)


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


def test_sampled_loss_corrects_uniform_draws_and_masks_the_target():
  served, model = _model(sampled_negatives=4)
  windows = _windows()
  queries = served.query_tower.every_position(windows).numpy()
  items = served.candidate_tower(
      two_tower_test.catalogue_features()).numpy()[1:]  # No padding.
  tf.random.set_seed(7)
  loss = float(model.compute_loss(windows))
  # The same op seed draws the same items again.
  tf.random.set_seed(7)
  draws = tf.random.uniform([4], 0, len(items), tf.int64).numpy()
  correction = np.log(len(items) / 4)
  expected = []
  for window, position, target in ((0, 0, 2), (0, 1, 3), (1, 0, 6)):
    query = queries[window, position]
    positive = items[target - 1] @ query / _TEMPERATURE
    sampled = [items[row] @ query / _TEMPERATURE + correction
               for row in draws if row != target - 1]
    logits = np.array([positive, *sampled])
    expected.append(np.log(np.sum(np.exp(logits))) - positive)
  np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)


@pytest.mark.parametrize("sampled_negatives", [0, 8])
def test_training_reduces_the_loss_of_the_served_towers(sampled_negatives):
  served, model = _model(sampled_negatives)
  windows = _windows()
  before = float(model.compute_loss(windows))
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  model.fit(tf.data.Dataset.from_tensors(windows).repeat(30), verbose=0)
  assert float(model.compute_loss(windows)) < 0.5 * before
  # The served query for history [1, 2] now ranks item 3 first.
  query = served.query_tower({
      features.HISTORY_ITEM_INDICES: tf.constant([[1, 2]], tf.int64),
      features.HOUR_OF_DAY: tf.constant([4], tf.int64),
      features.DAY_OF_WEEK: tf.constant([4], tf.int64),
      features.TIMESTAMP_Z: tf.constant([4.0])})
  scores = served.candidate_tower(two_tower_test.catalogue_features()) @ \
      tf.transpose(query)
  assert int(np.argmax(scores.numpy()[1:, 0])) + 1 == 3


def test_the_served_towers_save_after_per_sequence_training(tmp_path):
  served, model = _model()
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  model.fit(tf.data.Dataset.from_tensors(_windows()), verbose=0)
  towers = tf.Module()
  towers.query_tower = served.query_tower
  towers.candidate_tower = served.candidate_tower
  tf.saved_model.save(towers, str(tmp_path))
