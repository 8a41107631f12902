"""Tests for the GMN retrieval model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.retrieval import gmn
from models.retrieval import two_tower

VOCAB = two_tower.VocabularySizes(users=5, items=9, title_tokens=1, categories=1)
VARIANTS = {**gmn.ABLATIONS, "e_full_gmn_sinkhorn": dict(matching="sinkhorn")}


def _batch():
  # Videos are indices 1-4, items 5-8; the last user has no item side.
  return {
      features.ITEM_INDEX: tf.constant([1, 2, 3, 4], tf.int64),
      features.VIDEO_NEIGHBOUR_INDICES: tf.constant(
          [[2, 3, 0], [1, 0, 0], [4, 1, 2], [3, 0, 0]], tf.int64),
      features.ITEM_NEIGHBOUR_INDICES: tf.constant(
          [[5, 6], [7, 0], [8, 5], [0, 0]], tf.int64),
  }


def _model(**overrides):
  tf.keras.utils.set_random_seed(1)
  config = gmn.GmnConfig(embedding_dim=8, tower_units=(16, 8), num_preferences=2,
                         batch_size=4, **overrides)
  return gmn.build_gmn(
      VOCAB, {features.ITEM_INDEX: np.arange(VOCAB.items, dtype=np.int64)},
      np.full(VOCAB.items, 1.0 / VOCAB.items), config)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_towers_output_unit_vectors(variant):
  model = _model(**VARIANTS[variant])
  for tower in (model.query_tower, model.candidate_tower):
    embeddings = tower(_batch()).numpy()
    assert embeddings.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_neighbours_and_candidates_share_one_embedding():
  model = _model()
  assert model.query_tower.node_embedding is model.candidate_tower.node_embedding


@pytest.mark.parametrize("variant,reads_items", [
    ("a_two_tower_videos_only", False), ("b_pooled_both_sides", True),
    ("e_full_gmn", True)])
def test_item_neighbours_matter_only_with_the_item_side(variant, reads_items):
  model = _model(**VARIANTS[variant])
  batch = _batch()
  changed = dict(batch)
  changed[features.ITEM_NEIGHBOUR_INDICES] = tf.constant(
      [[8, 7], [6, 0], [5, 6], [0, 0]], tf.int64)
  difference = np.abs(model.query_tower(batch).numpy() -
                      model.query_tower(changed).numpy())[:3].max()
  assert (difference > 1e-4) == reads_items


def test_matching_without_the_item_side_is_rejected():
  with pytest.raises(ValueError, match="item side"):
    gmn.GmnConfig(use_item_side=False)


def test_training_reduces_the_in_batch_softmax_loss():
  # Eager steps: Keras' first compiled fit costs a minute on these machines.
  model = _model(matching="sinkhorn")
  optimizer = tf.keras.optimizers.Adam(0.05)
  batch = _batch()
  before = float(model.compute_loss(batch, training=True))
  for _ in range(10):
    with tf.GradientTape() as tape:
      loss = model.compute_loss(batch, training=True)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                  model.trainable_variables))
  after = float(model.compute_loss(batch, training=True))
  assert np.isfinite(before) and after < 0.5 * before


def test_most_recent_keeps_the_last_real_neighbours():
  indices = tf.constant([[5, 6, 7, 8, 0, 0], [9, 0, 0, 0, 0, 0], [0] * 6],
                        tf.int64)
  np.testing.assert_array_equal(gmn.most_recent(indices, 3).numpy(),
                                [[6, 7, 8], [0, 0, 9], [0, 0, 0]])
