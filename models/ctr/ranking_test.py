"""Tests for the DIN + DCN-v2 ranking model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.ctr import ranking

CONFIG = ranking.RankingConfig(embedding_dim=4, attention_units=(4,),
                               deep_units=(8,))


def _inputs(history):
  return {
      features.USER_INDEX: tf.constant([1, 2], tf.int64),
      features.ITEM_INDEX: tf.constant([3, 4], tf.int64),
      features.HISTORY_ITEM_INDICES: tf.constant(history, tf.int64),
      features.LABEL: tf.constant([1, 0], tf.int64),
  }


def test_aligned_table_matches_ids_and_sends_unknown_ids_to_the_oov_row():
  table = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], np.float32)
  vocabulary = ["b", "unknown", "a"]
  aligned = ranking.align_embedding_table(["a", "b", "c"], table, vocabulary)
  # Index 0 padding, 1..3 the vocabulary, 4 the OOV bucket.
  np.testing.assert_array_equal(aligned, [[0, 0], [2, 2], [0, 0], [1, 1], [0, 0]])


def test_model_reads_the_frozen_table_by_item_index():
  table = ranking.align_embedding_table(
      ["i1", "i2", "i3"], np.arange(6, dtype=np.float32).reshape(3, 2),
      ["i3", "i1", "i2", "i9"])
  model = ranking.RankingModel(3, len(table), CONFIG, content_table=table)
  oov_index = len(table) - 1
  rows = model.content_features(tf.constant([1, 2, 4, oov_index])).numpy()
  np.testing.assert_array_equal(rows, [[4, 5], [0, 1], [0, 0], [0, 0]])
  model(_inputs([[1, 2], [0, 0]]))
  assert all(variable.trainable for variable in model.trainable_variables)
  assert not any(v is model.content_table for v in model.trainable_variables)


def test_content_table_must_cover_every_item_index():
  with pytest.raises(ValueError, match="content table has 3 rows"):
    ranking.RankingModel(3, 6, CONFIG, content_table=np.zeros((3, 2)))


def test_image_table_must_cover_every_item_index():
  with pytest.raises(ValueError, match="image table has 4 rows"):
    ranking.RankingModel(3, 6, CONFIG, image_table=np.zeros((4, 2)))


def test_the_frozen_image_table_is_a_feature_of_each_item():
  tf.keras.utils.set_random_seed(0)
  images = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  model = ranking.RankingModel(3, 6, CONFIG, image_table=images)
  inputs = _inputs([[1, 2], [5, 0]])
  logits = model(inputs).numpy()
  assert not any(v is model.image_table for v in model.trainable_variables)
  # The candidates' (3 and 4) image rows move the logits; another item's
  # row (0, padding) does not.
  model.image_table = tf.constant(np.where(
      np.arange(6)[:, None] == 0, 9.0, images), tf.float32)
  np.testing.assert_allclose(model(inputs).numpy(), logits, rtol=1e-5)
  model.image_table = tf.constant(np.where(
      np.isin(np.arange(6), [3, 4])[:, None], images + 1.0, images), tf.float32)
  assert np.all(np.abs(model(inputs).numpy() - logits) > 1e-4)


def test_logits_ignore_padded_history_and_loss_is_finite():
  tf.keras.utils.set_random_seed(0)
  model = ranking.RankingModel(3, 6, CONFIG, content_table=np.eye(6, dtype=np.float32))
  logits = model(_inputs([[1, 0, 0], [2, 5, 0]])).numpy()
  shorter = model(_inputs([[1, 0], [2, 5]])).numpy()
  assert logits.shape == (2,)
  np.testing.assert_allclose(logits, shorter, rtol=1e-5)
  loss = model.compute_loss(_inputs([[1, 0, 0], [2, 5, 0]]), training=True)
  assert np.isfinite(loss.numpy())


def test_task_is_binary_cross_entropy_with_auc():
  model = ranking.RankingModel(3, 6, CONFIG)
  assert [metric.name for metric in model.task._ranking_metrics] == ["auc"]
  loss = model.task(labels=tf.constant([1.0, 0.0]),
                    predictions=tf.constant([0.0, 0.0]), compute_metrics=False)
  np.testing.assert_allclose(loss.numpy(), np.log(2.0), rtol=1e-5)


def test_config_rejects_unknown_hyperparameters():
  with pytest.raises(ValueError, match="unknown RankingConfig"):
    ranking.RankingConfig.from_dict({"bogus": 1})
