"""Tests for the GUIM model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import trainer_testing
from models.layers import mixture_of_representation
from models.retrieval import guim
from models.retrieval import two_tower

VOCAB = two_tower.VocabularySizes(users=5, items=7, title_tokens=6, categories=4)
BATCH = 4
IMAGE_DIM = 3


def _catalogue(image_dim: int = 0):
  catalogue = {
      features.ITEM_INDEX: np.arange(VOCAB.items, dtype=np.int64),
      features.TITLE_TOKEN_INDICES: np.tile(
          np.arange(VOCAB.items, dtype=np.int64)[:, None] % VOCAB.title_tokens,
          [1, 3]),
      features.CATEGORY_INDICES: np.tile(
          np.arange(VOCAB.items, dtype=np.int64)[:, None] % VOCAB.categories,
          [1, 2]),
  }
  if image_dim:
    catalogue[features.ITEM_IMAGE_EMBEDDING] = np.random.default_rng(0).normal(
        size=(VOCAB.items, image_dim)).astype(np.float32)
  return catalogue


def _batch(image_dim: int = 0):
  catalogue = _catalogue(image_dim)
  targets = np.array([1, 2, 3, 5])
  batch = {name: tf.constant(values[targets])
           for name, values in catalogue.items()}
  histories = [[6], [4, 2], [4, 2, 1], [1, 6]]
  batch[features.HISTORY_ITEM_INDICES] = tf.constant(
      [row + [0] * (features.HISTORY_LENGTH - len(row)) for row in histories],
      tf.int64)
  return batch


def _model(image_dim: int = 0, probability=None, **config):
  tf.keras.utils.set_random_seed(1)
  if probability is None:
    probability = np.full(VOCAB.items, 1.0 / VOCAB.items)
  return guim.build_guim(
      VOCAB, _catalogue(image_dim), probability,
      guim.GuimConfig(embedding_dim=8, tower_units=(16, 8), num_interests=3,
                      interest_hidden_units=4, num_uniform_negatives=2,
                      image_dim=image_dim, **config))


def test_query_tower_gives_k_unit_vectors_and_candidates_one():
  model = _model()
  interests = model.query_tower(_batch()).numpy()
  assert interests.shape == (BATCH, 3, 8)
  np.testing.assert_allclose(np.linalg.norm(interests, axis=-1), 1.0, rtol=1e-5)
  candidates = model.candidate_tower(_batch()).numpy()
  assert candidates.shape == (BATCH, 8)


def test_item_encoder_is_shared_by_both_towers():
  model = _model()
  assert model.query_tower.item_encoder is model.candidate_tower.item_encoder


def test_the_query_tower_reads_the_models_one_catalogue_copy():
  # Variables, so the exported query tower's graph does not hold the
  # catalogue; shared, so training holds it once.
  model = _model()
  for name, values in model.catalogue_features.items():
    assert model.query_tower.catalogue_features[name] is values
    assert isinstance(values, tf.Variable) and not values.trainable


def test_history_items_get_the_side_features_of_the_catalogue():
  model = _model()
  history = tf.constant([[4, 2], [0, 1]], tf.int64)
  direct = model.query_tower.item_encoder(
      {name: tf.gather(values, tf.reshape(history, [-1]))
       for name, values in _catalogue().items()})
  np.testing.assert_allclose(
      model.query_tower.encode_items(history).numpy().reshape(4, -1),
      direct.numpy(), rtol=1e-5)


def test_image_vectors_change_item_embeddings():
  model = _model(image_dim=IMAGE_DIM)
  batch = _batch(IMAGE_DIM)
  before = model.candidate_tower(batch).numpy()
  batch[features.ITEM_IMAGE_EMBEDDING] = batch[features.ITEM_IMAGE_EMBEDDING] + 1.0
  assert not np.allclose(before, model.candidate_tower(batch).numpy())
  assert model.query_tower(batch).shape == (BATCH, 3, 8)


def test_an_empty_history_gives_finite_vectors():
  batch = _batch()
  batch[features.HISTORY_ITEM_INDICES] = tf.zeros_like(
      batch[features.HISTORY_ITEM_INDICES])
  assert np.isfinite(_model().query_tower(batch).numpy()).all()


def test_training_lowers_the_loss():
  model = _model(temperature=0.1)
  # Eager steps: tracing `fit` costs more than ten tiny steps.
  model.compile(optimizer=tf.keras.optimizers.Adam(0.05), run_eagerly=True)
  before = float(model.compute_loss(_batch()))
  model.fit(tf.data.Dataset.from_tensors(_batch()).repeat(10), verbose=0)
  assert float(model.compute_loss(_batch())) < before


def test_loss_is_info_nce_of_the_label_aware_query():
  model = _model(use_logq_correction=False, attention_power=math.inf,
                 training_scores="target_query", masked_item_weight=0.0)
  batch = _batch()
  positives = model.candidate_tower(batch).numpy()
  interests = model.query_tower(batch).numpy()
  best = np.einsum("bkd,bd->bk", interests, positives).argmax(axis=1)
  queries = interests[np.arange(BATCH), best]
  queries /= np.linalg.norm(queries, axis=1, keepdims=True)
  logits = queries @ positives.T / model.config.temperature
  # Targets 1, 2, 3, 5 are distinct, so no accidental hit is masked.
  expected = np.mean([np.log(np.exp(logits[i]).sum()) - logits[i, i]
                      for i in range(BATCH)])
  assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


def _next_item_info_nce(model, batch) -> float:
  """The per-candidate next-item loss at infinite power, without logQ."""
  positives = model.candidate_tower(batch)
  scores = mixture_of_representation.max_merge_scores(
      model.query_tower(batch), positives).numpy()
  logits = scores / model.config.temperature
  return np.mean([np.log(np.exp(logits[i]).sum()) - logits[i, i]
                  for i in range(BATCH)])


def test_per_candidate_loss_is_info_nce_of_the_max_merge_scores():
  # Weight 0 is the next-item model as it was before the masked objective.
  model = _model(use_logq_correction=False, attention_power=math.inf,
                 training_scores="per_candidate", masked_item_weight=0.0)
  assert model.query_tower.mask_embedding is None
  assert float(model.compute_loss(_batch())) == pytest.approx(
      _next_item_info_nce(model, _batch()), rel=1e-4)


def test_mixed_sampling_log_q_is_the_log_of_the_pool_probability():
  log_q = guim.mixed_sampling_log_q(tf.constant([0.5, 0.1]), batch_size=4,
                                    num_uniform=4, num_items=10)
  np.testing.assert_allclose(
      log_q.numpy(), np.log([(4 * 0.5 + 4 * 0.1) / 8, (4 * 0.1 + 4 * 0.1) / 8]),
      rtol=1e-6)
  only_in_batch = guim.mixed_sampling_log_q(tf.constant([0.25]), 8, 0, 10)
  np.testing.assert_allclose(only_in_batch.numpy(), np.log([0.25]), rtol=1e-6)


def test_score_uses_the_configured_merge_rule():
  candidates = tf.math.l2_normalize(tf.random.stateless_normal([6, 8], [0, 1]),
                                    axis=-1)
  batch = _batch()
  max_model = _model(retrieval_merge="max")
  interests = max_model.query_tower(batch)
  np.testing.assert_allclose(
      max_model.score(batch, candidates).numpy(),
      mixture_of_representation.max_merge_scores(interests, candidates).numpy(),
      rtol=1e-5)
  soft_model = _model(retrieval_merge="label_aware", attention_power=0.0)
  mean_score = np.einsum("bkd,nd->bn", soft_model.query_tower(batch).numpy(),
                         candidates.numpy()) / 3
  np.testing.assert_allclose(soft_model.score(batch, candidates).numpy(),
                             mean_score, rtol=1e-4, atol=1e-6)


def test_config_parses_infinite_power_and_rejects_unknown_merge():
  config = guim.GuimConfig.from_dict({"attention_power": "inf",
                                      "tower_units": [8]})
  assert math.isinf(config.attention_power)
  with pytest.raises(ValueError, match="retrieval_merge"):
    guim.GuimConfig(retrieval_merge="mean")
  with pytest.raises(ValueError, match="training_scores"):
    guim.GuimConfig(training_scores="mean")
  with pytest.raises(ValueError, match="full_catalogue_softmax"):
    guim.GuimConfig(full_catalogue_softmax=True)
  with pytest.raises(ValueError, match="masked_item_weight"):
    guim.GuimConfig(masked_item_weight=-1.0)
  with pytest.raises(ValueError, match="masked_item_probability"):
    guim.GuimConfig(masked_item_probability=0.0)
  with pytest.raises(ValueError, match="item_bias"):
    guim.GuimConfig(item_bias=True)
  guim.GuimConfig(item_bias=True, masked_item_weight=0.0)


# Histories of `_batch()`: [6], [4, 2], [4, 2, 1], [1, 6], then padding.
MASK = np.zeros((BATCH, features.HISTORY_LENGTH), bool)
MASK[1, 1] = MASK[2, 0] = MASK[3, 0] = True
MASKED_ITEMS = [2, 4, 1]


def _injected(model, mask=MASK):
  """`model` whose masked-item objective masks `mask`, not random draws."""
  model.query_tower.sample_item_mask = lambda history: tf.constant(mask)
  return model


def test_sampled_mask_hides_real_positions_only_at_the_configured_rate():
  model = _model(masked_item_probability=0.5)
  history = tf.constant(np.tile(np.arange(features.HISTORY_LENGTH) % 3,
                                [400, 1]), tf.int64)
  tf.random.set_seed(0)
  mask = model.query_tower.sample_item_mask(history).numpy()
  real = history.numpy() != features.PADDING_INDEX
  assert not mask[~real].any()
  assert mask[real].mean() == pytest.approx(0.5, abs=0.02)
  everything = _model(masked_item_probability=1.0)
  np.testing.assert_array_equal(
      everything.query_tower.sample_item_mask(history).numpy(), real)


def test_the_encoder_reads_the_mask_vector_at_masked_positions():
  model = _model()
  batch = _batch()
  history = batch[features.HISTORY_ITEM_INDICES]
  vectors = model.query_tower.history_vectors(batch, tf.constant(MASK)).numpy()
  plain = model.query_tower.encode_items(history).numpy()
  mask_vector = model.query_tower.mask_embedding.numpy()
  np.testing.assert_allclose(vectors[MASK],
                             np.tile(mask_vector, [len(MASKED_ITEMS), 1]))
  np.testing.assert_allclose(vectors[~MASK], plain[~MASK], rtol=1e-5)
  np.testing.assert_array_equal(
      tf.boolean_mask(history, MASK).numpy(), MASKED_ITEMS)


def test_masked_queries_do_not_depend_on_the_masked_items():
  # A leak of the masked item (its id or encoding reaching the encoder)
  # would change the query at its own position when the item changes.
  model = _model()
  batch = _batch()
  queries = model.query_tower.masked_item_queries(batch, tf.constant(MASK))
  history = batch[features.HISTORY_ITEM_INDICES].numpy()
  swapped = dict(batch)
  swapped[features.HISTORY_ITEM_INDICES] = tf.constant(
      np.where(MASK, 3, history))
  np.testing.assert_allclose(
      model.query_tower.masked_item_queries(swapped, tf.constant(MASK)),
      queries, rtol=1e-5, atol=1e-6)
  # Bidirectional: row 2's query at position 0 reads the later positions.
  later = dict(batch)
  later[features.HISTORY_ITEM_INDICES] = tf.constant(
      np.where(np.arange(features.HISTORY_LENGTH) == 2, 5, history)
      * (history != 0))
  changed = model.query_tower.masked_item_queries(later, tf.constant(MASK))
  assert not np.allclose(changed[1], queries[1], atol=1e-4)


def test_masked_item_loss_is_info_nce_with_log_q_over_the_masked_items():
  probability = np.array([0.0, 0.3, 0.2, 0.1, 0.25, 0.1, 0.05])
  model = _model(probability=probability)
  batch = _batch()
  queries = model.query_tower.masked_item_queries(batch,
                                                  tf.constant(MASK)).numpy()
  targets = model.candidate_tower(
      {name: tf.constant(values[MASKED_ITEMS])
       for name, values in _catalogue().items()}).numpy()
  logits = (queries @ targets.T / model.config.temperature
            - np.log(probability[MASKED_ITEMS]))
  expected = np.mean([np.log(np.exp(row).sum()) - row[i]
                      for i, row in enumerate(logits)])
  assert float(model.masked_item_loss(batch, tf.constant(MASK))) == (
      pytest.approx(expected, rel=1e-4))


def test_masked_item_loss_is_zero_without_masked_positions():
  model = _model()
  assert float(model.masked_item_loss(_batch(), tf.constant(MASK & False))) == 0


def test_loss_is_next_item_plus_weighted_masked_item_loss():
  model = _injected(_model(use_logq_correction=False, attention_power=math.inf,
                           masked_item_weight=0.5))
  batch = _batch()
  expected = (_next_item_info_nce(model, batch)
              + 0.5 * float(model.masked_item_loss(batch, tf.constant(MASK))))
  assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)


def test_event_types_add_an_embedding_and_type_zero_adds_none():
  model = _model(num_event_types=3)
  batch = _batch()
  plain = model.query_tower(batch).numpy()
  batch[features.HISTORY_EVENT_INDICES] = tf.zeros_like(
      batch[features.HISTORY_ITEM_INDICES])
  np.testing.assert_allclose(model.query_tower(batch).numpy(), plain,
                             rtol=1e-5)
  batch[features.HISTORY_EVENT_INDICES] = tf.cast(
      batch[features.HISTORY_ITEM_INDICES] != 0, tf.int64) * 2
  vectors = model.query_tower.history_vectors(batch).numpy()
  type_two = model.query_tower.event_embedding(tf.constant(2)).numpy()
  items = model.query_tower.encode_items(
      batch[features.HISTORY_ITEM_INDICES]).numpy()
  np.testing.assert_allclose(vectors[0, 0], items[0, 0] + type_two, rtol=1e-5)
  np.testing.assert_allclose(vectors[0, 1], items[0, 1], rtol=1e-5)
  assert not np.allclose(model.query_tower(batch).numpy(), plain)


def test_training_with_both_objectives_lowers_the_loss():
  model = _injected(_model(temperature=0.1, num_event_types=3))
  batch = _batch()
  batch[features.HISTORY_EVENT_INDICES] = tf.cast(
      batch[features.HISTORY_ITEM_INDICES] != 0, tf.int64)
  before = float(model.masked_item_loss(batch, tf.constant(MASK)))
  first, last = trainer_testing.losses_before_and_after(model, batch)
  assert last < first
  assert float(model.masked_item_loss(batch, tf.constant(MASK))) < before
