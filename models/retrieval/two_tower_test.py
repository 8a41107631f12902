"""Tests for the TFRS two-tower model."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.retrieval import two_tower

VOCAB = two_tower.VocabularySizes(users=5, items=7, title_tokens=6, categories=4)
BATCH = 4


def _batch():
  return {
      features.USER_INDEX: tf.constant([1, 2, 3, 4], tf.int64),
      features.ITEM_INDEX: tf.constant([1, 2, 3, 2], tf.int64),
      features.HISTORY_ITEM_INDICES: tf.constant(
          [[0] * features.HISTORY_LENGTH] * 2 +
          [[1, 2] + [0] * (features.HISTORY_LENGTH - 2)] * 2, tf.int64),
      features.TITLE_TOKEN_INDICES: tf.ones([BATCH, features.TITLE_LENGTH], tf.int64),
      features.CATEGORY_INDICES: tf.zeros([BATCH, features.CATEGORY_LENGTH], tf.int64),
      features.HOUR_OF_DAY: tf.constant([0, 5, 23, 12], tf.int64),
      features.DAY_OF_WEEK: tf.constant([0, 1, 6, 3], tf.int64),
      features.TIMESTAMP_Z: tf.constant([-1.0, 0.0, 0.5, 1.0]),
  }


def catalogue_features(vocab=VOCAB):
  """Candidate features of every item index: item i has title token i."""
  return {
      features.ITEM_INDEX: np.arange(vocab.items, dtype=np.int64),
      features.TITLE_TOKEN_INDICES: np.tile(
          np.arange(vocab.items, dtype=np.int64)[:, None] % vocab.title_tokens,
          [1, features.TITLE_LENGTH]),
      features.CATEGORY_INDICES: np.zeros(
          (vocab.items, features.CATEGORY_LENGTH), np.int64),
  }


def _model(**config):
  tf.keras.utils.set_random_seed(1)
  probability = np.full(VOCAB.items, 1.0 / VOCAB.items)
  return two_tower.build_two_tower(
      VOCAB, catalogue_features(), probability,
      two_tower.TwoTowerConfig(embedding_dim=8, tower_units=(16, 8), **config))


def test_catalogue_variables_wrap_arrays_once_and_keep_variables():
  arrays = catalogue_features()
  variables = two_tower.catalogue_variables(arrays)
  for name, values in arrays.items():
    assert not variables[name].trainable
    np.testing.assert_array_equal(variables[name].numpy(), values)
  again = two_tower.catalogue_variables(variables)
  assert all(again[name] is variables[name] for name in arrays)


def test_towers_output_unit_vectors_of_the_last_layer_size():
  model = _model()
  batch = _batch()
  for tower in (model.query_tower, model.candidate_tower):
    embeddings = tower(batch).numpy()
    assert embeddings.shape == (BATCH, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("use_request_context", [True, False])
def test_request_time_reaches_the_query_only_with_request_context(
    use_request_context):
  tower = _model(use_request_context=use_request_context).query_tower
  batch = _batch()
  later = dict(batch, **{
      features.HOUR_OF_DAY: tf.constant([3, 9, 1, 20], tf.int64),
      features.DAY_OF_WEEK: tf.constant([4, 5, 2, 0], tf.int64),
      features.TIMESTAMP_Z: tf.constant([2.0, -2.0, 1.5, -0.5]),
  })
  moved = np.abs(tower(batch).numpy() - tower(later).numpy()).max()
  assert (moved > 1e-4) == use_request_context, moved


def test_item_embedding_is_shared_by_history_and_candidates():
  model = _model()
  assert model.query_tower.item_embedding is model.candidate_tower.item_embedding


def test_training_reduces_the_in_batch_softmax_loss():
  model = _model()
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
  batch = tf.data.Dataset.from_tensors(_batch())
  before = model.evaluate(batch, verbose=0, return_dict=True)["loss"]
  model.fit(batch.repeat(30), epochs=1, verbose=0)
  after = model.evaluate(batch, verbose=0, return_dict=True)["loss"]
  assert np.isfinite(before) and after < 0.5 * before


def test_logq_correction_changes_the_loss():
  batch = _batch()
  with_logq = _model(use_logq_correction=True)
  skewed = np.array([0.0, 0.7, 0.1, 0.1, 0.05, 0.05, 0.0])
  with_logq.item_sampling_probability = tf.constant(skewed, tf.float32)
  without_logq = _model(use_logq_correction=False)
  assert with_logq.compute_loss(batch).numpy() != pytest.approx(
      without_logq.compute_loss(batch).numpy())


def test_uniform_negatives_enlarge_the_candidate_pool_in_training_only():
  model = _model(num_uniform_negatives=5)
  batch = _batch()
  captured = {}
  original = model.task.call

  def spy(query_embeddings, candidate_embeddings, **kwargs):
    captured["shape"] = candidate_embeddings.shape
    captured["ids"] = kwargs["candidate_ids"]
    captured["q"] = kwargs["candidate_sampling_probability"].numpy()
    return original(query_embeddings, candidate_embeddings, **kwargs)

  model.task.call = spy
  model.compute_loss(batch, training=True)
  assert captured["shape"] == (BATCH + 5, 8)
  sampled = captured["ids"].numpy()[BATCH:]
  assert np.all((sampled >= 1) & (sampled <= VOCAB.items - 2))
  # One draw into the pool of 4 in-batch + 5 uniform candidates.
  p = 1.0 / VOCAB.items
  expected_q = (BATCH * p + 5 / (VOCAB.items - 2)) / (BATCH + 5)
  np.testing.assert_allclose(captured["q"], expected_q, rtol=1e-5)
  model.compute_loss(batch, training=False)
  assert captured["shape"] == (BATCH, 8)
  np.testing.assert_allclose(captured["q"], p, rtol=1e-5)


def test_logq_probability_is_the_item_frequency_without_uniform_negatives():
  model = _model()
  skewed = np.array([0.0, 0.7, 0.1, 0.1, 0.05, 0.05, 0.0], np.float32)
  model.item_sampling_probability = tf.constant(skewed)
  captured = {}
  original = model.task.call

  def spy(query_embeddings, candidate_embeddings, **kwargs):
    captured["q"] = kwargs["candidate_sampling_probability"].numpy()
    return original(query_embeddings, candidate_embeddings, **kwargs)

  model.task.call = spy
  model.compute_loss(_batch(), training=True)
  # TFRS clips q to [1e-6, 1], so it must be a probability, not a count.
  np.testing.assert_allclose(captured["q"], skewed[[1, 2, 3, 2]], rtol=1e-6)


_TARGETS = np.array([1, 2, 3, 2])


def _catalogue_vectors(model):
  """A batch whose targets are `_TARGETS`, its query vectors, and the
  vectors of every item but padding (index 0), each exactly once."""
  catalogue = catalogue_features()
  batch = {**_batch(), **{name: tf.constant(values[_TARGETS])
                          for name, values in catalogue.items()}}
  items = model.candidate_tower(
      {name: values[1:] for name, values in catalogue.items()}).numpy()
  return batch, model.query_tower(batch).numpy(), items


def _softmax_cross_entropy(logits):
  """Over every item, summed over the batch as TFRS does."""
  log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return -log_softmax[np.arange(BATCH), _TARGETS - 1].sum()


def test_full_catalogue_softmax_is_the_cross_entropy_over_every_item():
  # Uniform negatives and logQ are set to show that this mode ignores them.
  model = _model(full_catalogue_softmax=True, num_uniform_negatives=5,
                 temperature=0.5)
  batch, queries, items = _catalogue_vectors(model)
  expected = _softmax_cross_entropy(queries @ items.T / 0.5)
  for training in (True, False):
    np.testing.assert_allclose(
        model.compute_loss(batch, training=training).numpy(), expected,
        rtol=1e-5)


def test_item_bias_adds_a_served_dot_product_coordinate_to_each_logit():
  tf.keras.utils.set_random_seed(1)
  # Index 0 is padding and 5, 6 are never trained on: the smoothing floor
  # 0.25 (the smallest positive frequency) is their bias.
  probability = np.array([0.0, 0.5, 0.25, 0.25, 0.0, 0.0, 0.0])
  model = two_tower.build_two_tower(
      VOCAB, catalogue_features(), probability,
      two_tower.TwoTowerConfig(embedding_dim=8, tower_units=(8,),
                               temperature=0.5, item_bias=True,
                               full_catalogue_softmax=True))
  batch, queries, items = _catalogue_vectors(model)
  assert queries.shape == (BATCH, 9) and items.shape == (VOCAB.items - 1, 9)
  np.testing.assert_allclose(queries[:, -1], 0.5)
  np.testing.assert_allclose(
      items[:, -1], np.log([0.75, 0.5, 0.5, 0.25, 0.25, 0.25]), rtol=1e-6)
  # The inner towers still give unit vectors: cosine / T + bias.
  np.testing.assert_allclose(np.linalg.norm(queries[:, :-1], axis=1), 1.0,
                             rtol=1e-5)
  logits = queries[:, :-1] @ items[:, :-1].T / 0.5 + items[:, -1]
  np.testing.assert_allclose(queries @ items.T / 0.5, logits, rtol=1e-5)
  np.testing.assert_allclose(model.compute_loss(batch).numpy(),
                             _softmax_cross_entropy(logits), rtol=1e-5)
  bias = model.candidate_tower.bias.embeddings
  assert any(variable is bias for variable in model.trainable_variables)


def test_unknown_hyperparameters_are_rejected():
  with pytest.raises(ValueError, match="unknown TwoTowerConfig hyperparameters"):
    two_tower.TwoTowerConfig.from_dict({"epoch": 3})
  config = two_tower.TwoTowerConfig.from_dict({"tower_units": [32, 16], "epochs": 2})
  assert config.tower_units == (32, 16) and config.epochs == 2


def test_lazy_adam_above_its_catalogue_size_unless_the_config_says():
  config = two_tower.TwoTowerConfig()
  assert not two_tower.uses_lazy_adam(config, two_tower.LAZY_ADAM_MIN_ITEMS)
  assert two_tower.uses_lazy_adam(config, two_tower.LAZY_ADAM_MIN_ITEMS + 1)
  assert two_tower.uses_lazy_adam(
      two_tower.TwoTowerConfig(lazy_adam=True), 10)
  assert not two_tower.uses_lazy_adam(
      two_tower.TwoTowerConfig(lazy_adam=False), 10**6)
