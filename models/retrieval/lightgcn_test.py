"""Tests for the LightGCN retrieval model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import trainer_testing
from models.retrieval import lightgcn
from models.retrieval import two_tower

# Index 0 is padding and the last index the OOV bucket, as in Transform's
# vocabularies: users 1-2, items 1-4.
VOCAB = two_tower.VocabularySizes(users=4, items=6, title_tokens=1, categories=1)
# User 1 bought items 1 and 2, user 2 items 2 and 3; item 4 has no edge.
EDGES = (np.array([1, 1, 2, 2]), np.array([1, 2, 2, 3]))
OOV_USER = 3


def _model(**overrides) -> lightgcn.LightGcnModel:
  tf.keras.utils.set_random_seed(3)
  config = lightgcn.LightGcnConfig(embedding_dim=4, num_layers=2, batch_size=4,
                                   **overrides)
  return lightgcn.build_lightgcn(
      VOCAB, {features.ITEM_INDEX: np.arange(VOCAB.items, dtype=np.int64)},
      np.full(VOCAB.items, 1.0 / VOCAB.items), config, edges=EDGES)


def _requests(users, histories):
  return {features.USER_INDEX: tf.constant(users, tf.int64),
          features.HISTORY_ITEM_INDICES: tf.constant(histories, tf.int64),
          features.ITEM_INDEX: tf.constant([3, 1][:len(users)], tf.int64)}


def test_a_request_with_the_user_s_train_items_gets_the_trained_vector():
  model = _model(normalize=False)
  # Orders, padding and a repeat do not change the neighbourhood.
  requests = _requests([1, 2], [[2, 1, 2, 0], [3, 2, 0, 0]])
  trained = model.query_tower(requests, training=True).numpy()
  served = model.query_tower(requests).numpy()
  np.testing.assert_allclose(served, trained, rtol=1e-5, atol=1e-6)
  user_layers, _ = model.embeddings.layers()
  np.testing.assert_allclose(trained,
                             user_layers.numpy()[:, [1, 2]].mean(axis=0),
                             rtol=1e-5, atol=1e-6)


def test_an_unknown_user_is_served_from_the_history_alone():
  model = _model(normalize=False)
  known = model.query_tower(_requests([1], [[1, 2]])).numpy()
  unknown = model.query_tower(_requests([OOV_USER], [[1, 2]])).numpy()
  layer_0 = model.embeddings.user_table.numpy()[1]
  # The mean over K + 1 = 3 layers loses only the user's own layer 0.
  np.testing.assert_allclose(3 * unknown, 3 * known - layer_0, rtol=1e-5,
                             atol=1e-6)
  assert np.abs(model.query_tower(_requests([OOV_USER], [[0, 0]]))).max() == 0


def test_candidates_are_the_mean_of_the_item_layers():
  model = _model(normalize=False)
  _, item_layers = model.embeddings.layers()
  vectors = model.candidate_tower(
      {features.ITEM_INDEX: tf.constant([4, 2], tf.int64)}).numpy()
  np.testing.assert_allclose(vectors, item_layers.numpy()[:, [4, 2]].mean(0),
                             rtol=1e-5)
  # Item 4 has no edge: its layers 1-2 are zero.
  np.testing.assert_allclose(vectors[0],
                             model.embeddings.item_table.numpy()[4] / 3,
                             rtol=1e-5)


def test_the_serving_towers_keep_the_tables_they_were_frozen_with():
  model = _model()
  requests = _requests([1, 2], [[1, 2], [2, 3]])
  query, candidate = model.serving_towers()
  before = (query(requests).numpy(), candidate(requests).numpy())
  np.testing.assert_allclose(before[0], model.query_tower(requests).numpy(),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(before[1], model.candidate_tower(requests).numpy(),
                             rtol=1e-5, atol=1e-6)
  model.embeddings.item_table.assign_add(tf.ones_like(model.embeddings.item_table))
  np.testing.assert_allclose(query(requests).numpy(), before[0])
  assert np.abs(model.query_tower(requests).numpy() - before[0]).max() > 1e-3


def test_the_loss_adds_the_l2_of_the_batch_layer_0_embeddings():
  requests = _requests([1, 2], [[1, 2], [2, 3]])
  plain = _model(embedding_l2=0.0)
  penalised = _model(embedding_l2=0.5)
  tables = penalised.embeddings
  expected = 0.5 * (
      np.mean(np.sum(tables.user_table.numpy()[[1, 2]] ** 2, axis=1)) +
      np.mean(np.sum(tables.item_table.numpy()[[3, 1]] ** 2, axis=1)))
  difference = (float(penalised.compute_loss(requests, training=True)) -
                float(plain.compute_loss(requests, training=True)))
  assert difference == pytest.approx(expected, rel=1e-5)


def test_training_reduces_the_loss():
  before, after = trainer_testing.losses_before_and_after(
      _model(), _requests([1, 2], [[1, 2], [2, 3]]))
  assert np.isfinite(before) and after < before


def test_the_frozen_towers_save_and_load_without_their_training_branch(
    tmp_path):
  query, candidate = _model().serving_towers()
  module = tf.Module()
  module.query, module.candidate = query, candidate
  index = tf.TensorSpec([None], tf.int64)
  module.serve = tf.function(
      lambda users, histories, items: {
          "query": query({features.USER_INDEX: users,
                          features.HISTORY_ITEM_INDICES: histories}),
          "candidate": candidate({features.ITEM_INDEX: items})},
      input_signature=[index, tf.TensorSpec([None, None], tf.int64), index])
  tf.saved_model.save(module, str(tmp_path / "lightgcn"),
                      signatures={"serve": module.serve})
  requests = _requests([1, OOV_USER], [[1, 2], [2, 3]])
  served = tf.saved_model.load(str(tmp_path / "lightgcn")).signatures["serve"](
      users=requests[features.USER_INDEX],
      histories=requests[features.HISTORY_ITEM_INDICES],
      items=requests[features.ITEM_INDEX])
  np.testing.assert_allclose(served["query"].numpy(), query(requests).numpy(),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(served["candidate"].numpy(),
                             candidate(requests).numpy(), rtol=1e-5, atol=1e-6)


def test_item_bias_is_refused():
  with pytest.raises(ValueError, match="item_bias"):
    lightgcn.LightGcnConfig(item_bias=True)


def test_the_graph_is_required():
  with pytest.raises(ValueError, match="train graph"):
    lightgcn.build_lightgcn(VOCAB, {}, np.ones(VOCAB.items),
                            lightgcn.LightGcnConfig())


def test_graph_user_vectors_read_the_graph_not_a_history():
  model = _model()
  requests = _requests([1, 2], [[1, 2], [2, 3]])
  np.testing.assert_allclose(
      model.graph_user_vectors(tf.constant([1, 2], tf.int64)).numpy(),
      model.query_tower(requests, training=True).numpy(), rtol=1e-6)
