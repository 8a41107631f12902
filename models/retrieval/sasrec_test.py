"""Tests for the SASRec-class sequential retriever."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.retrieval import sasrec
from models.retrieval import two_tower
from models.retrieval import two_tower_test


def _model(**overrides):
  tf.keras.utils.set_random_seed(0)
  vocab = two_tower_test.VOCAB
  config = sasrec.SasRecConfig(**{
      "embedding_dim": 8, "tower_units": (16, 8), "num_blocks": 1,
      "num_heads": 2, "dropout": 0.0, "num_uniform_negatives": 3,
      **overrides})
  return sasrec.build_sasrec(vocab, two_tower_test.catalogue_features(vocab),
                             np.full(vocab.items, 1.0 / vocab.items), config)


def test_query_depends_on_history_order():
  model = _model()
  batch = two_tower_test._batch()  # pylint: disable=protected-access
  forward = dict(batch)
  reverse = dict(batch)
  history = np.zeros([4, features.HISTORY_LENGTH], np.int64)
  history[:, :3] = [1, 2, 3]
  forward[features.HISTORY_ITEM_INDICES] = tf.constant(history)
  history[:, :3] = [3, 2, 1]
  reverse[features.HISTORY_ITEM_INDICES] = tf.constant(history)
  a = model.query_tower(forward).numpy()
  b = model.query_tower(reverse).numpy()
  assert a.shape == (4, 8)
  np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
  assert not np.allclose(a, b), "a sequence model must see order"


@pytest.mark.parametrize("full_catalogue_softmax,item_bias",
                         [(False, False), (True, False), (True, True)])
def test_training_reduces_the_loss_and_shares_the_item_embedding(
    full_catalogue_softmax, item_bias):
  model = _model(full_catalogue_softmax=full_catalogue_softmax,
                 item_bias=item_bias)
  query_tower, candidate_tower = model.query_tower, model.candidate_tower
  if item_bias:
    query_tower, candidate_tower = query_tower.tower, candidate_tower.tower
  # By default history items are encoded with the candidate tower's tables.
  history_encoder = query_tower.item_embedding
  assert isinstance(history_encoder, sasrec.HistoryItemEncoder)
  assert history_encoder.item_embedding is candidate_tower.item_embedding
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  batch = tf.data.Dataset.from_tensors(two_tower_test._batch())  # pylint: disable=protected-access
  before = model.evaluate(batch, verbose=0, return_dict=True)["loss"]
  model.fit(batch.repeat(30), epochs=1, verbose=0)
  after = model.evaluate(batch, verbose=0, return_dict=True)["loss"]
  assert after < 0.5 * before


def test_dropout_acts_in_the_training_loss_only():
  # No uniform negatives: the only randomness left is dropout.
  model = _model(dropout=0.5, num_uniform_negatives=0)
  batch = two_tower_test._batch()  # pylint: disable=protected-access
  training = {float(model.compute_loss(batch, training=True))
              for _ in range(3)}
  inference = {float(model.compute_loss(batch, training=False))
               for _ in range(3)}
  assert len(training) > 1, "dropout must reach the sequence encoder"
  assert len(inference) == 1


def test_history_item_features_sum_the_candidate_tower_embeddings():
  model = _model(history_item_features=True)
  tower = model.candidate_tower
  # Item 3 has title token 3 at every position and no category (all
  # padding); item 0 is padding, with neither.
  vectors = model.query_tower.item_embedding(tf.constant([[3, 0]])).numpy()
  item = tower.item_embedding.embeddings.numpy()
  title = tower.title_embedding.embeddings.numpy()
  np.testing.assert_allclose(vectors[0, 0], item[3] + title[3], rtol=1e-6)
  np.testing.assert_allclose(vectors[0, 1], item[0], rtol=1e-6)
  # The history side trains the candidate tower's title table.
  history_vars = {id(v) for v in
                  model.query_tower.item_embedding.trainable_variables}
  assert id(tower.title_embedding.embeddings) in history_vars
  # Its item feature tables are checkpointed, not graph constants, never
  # trained, and the model's one copy of the catalogue.
  encoder = model.query_tower.item_embedding
  frozen = {id(v) for v in encoder.non_trainable_variables}
  assert {id(encoder.title_tokens), id(encoder.categories)} <= frozen
  assert not {id(encoder.title_tokens), id(encoder.categories)} & history_vars
  assert encoder.title_tokens is model.catalogue_features[
      features.TITLE_TOKEN_INDICES]
  assert encoder.categories is model.catalogue_features[
      features.CATEGORY_INDICES]


def test_the_training_model_shares_the_served_models_catalogue():
  model = _model()
  trained = sasrec.SequenceRetrievalModel(
      model.query_tower, model.candidate_tower, model.catalogue_features,
      np.full(two_tower_test.VOCAB.items, 1.0 / two_tower_test.VOCAB.items),
      model.config, sampled=True)
  for name, values in model.catalogue_features.items():
    assert trained.catalogue_features[name] is values
    assert not values.trainable


def test_config_inherits_retrieval_settings():
  config = sasrec.SasRecConfig.from_dict({"num_blocks": 3, "temperature": 0.1})
  assert isinstance(config, two_tower.TwoTowerConfig)
  assert (config.num_blocks, config.temperature) == (3, 0.1)


def test_query_without_request_context_needs_only_the_history():
  tf.keras.utils.set_random_seed(0)
  vocab = two_tower_test.VOCAB
  config = sasrec.SasRecConfig(embedding_dim=8, tower_units=(8,),
                               num_blocks=1, dropout=0.0,
                               use_request_context=False)
  model = sasrec.build_sasrec(vocab, two_tower_test.catalogue_features(vocab),
                              np.full(vocab.items, 1.0 / vocab.items), config)
  # Trailing padding may be trimmed: a shorter padded history is the same.
  history = np.array([[1, 2, 3, 0, 0]], np.int64)
  full = model.query_tower({features.HISTORY_ITEM_INDICES: history}).numpy()
  trimmed = model.query_tower(
      {features.HISTORY_ITEM_INDICES: history[:, :3]}).numpy()
  assert full.shape == (1, 8)
  np.testing.assert_allclose(full, trimmed, rtol=1e-5, atol=1e-6)


def _window():
  """Two windows of 4 positions, per-position context; the second padded."""
  return {
      features.HISTORY_ITEM_INDICES: tf.constant([[1, 2, 3, 4], [3, 1, 0, 0]],
                                                 tf.int64),
      features.HOUR_OF_DAY: tf.constant([[1, 2, 3, 4], [5, 6, 0, 0]], tf.int64),
      features.DAY_OF_WEEK: tf.constant([[0, 1, 2, 3], [4, 5, 0, 0]], tf.int64),
      features.TIMESTAMP_Z: tf.constant([[0.1, 0.2, 0.3, 0.4],
                                         [0.5, 0.6, 0.0, 0.0]]),
  }


def test_every_position_sees_no_later_item():
  tower = _model().query_tower
  window = _window()
  before = tower.every_position(window).numpy()
  perturbed = dict(window)
  perturbed[features.HISTORY_ITEM_INDICES] = tf.constant(
      [[1, 2, 4, 4], [3, 1, 0, 0]], tf.int64)
  after = tower.every_position(perturbed).numpy()
  assert before.shape == (2, 4, 8)
  # Item 3 of the first window changed: positions 0 and 1 cannot tell.
  np.testing.assert_allclose(after[0, :2], before[0, :2], rtol=1e-5, atol=1e-6)
  assert not np.allclose(after[0, 2:], before[0, 2:])
  np.testing.assert_allclose(after[1], before[1], rtol=1e-5, atol=1e-6)


def test_every_position_is_the_served_query_of_each_prefix():
  tower = _model().query_tower
  window = _window()
  positions = tower.every_position(window).numpy()
  for length in range(1, 5):
    prefix = {
        features.HISTORY_ITEM_INDICES:
            window[features.HISTORY_ITEM_INDICES][:1, :length],
        **{name: window[name][:1, length - 1] for name in (
            features.HOUR_OF_DAY, features.DAY_OF_WEEK, features.TIMESTAMP_Z)}}
    np.testing.assert_allclose(tower(prefix).numpy()[0],
                               positions[0, length - 1], rtol=1e-5, atol=1e-6)
