"""Tests for COURIER pre-training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.ctr import courier

CONFIG = courier.CourierConfig(encoder_units=(8, 4), temperature=0.5)


def _inputs(targets, history, hard_negatives=None):
  inputs = {features.ITEM_INDEX: tf.constant(targets, tf.int64),
            features.HISTORY_ITEM_INDICES: tf.constant(history, tf.int64)}
  if hard_negatives is not None:
    inputs[features.HARD_NEGATIVE_ITEM_INDICES] = tf.constant(hard_negatives,
                                                              tf.int64)
  return inputs


def _content(num_items=6, width=5, seed=0):
  content = np.random.default_rng(seed).normal(size=(num_items, width))
  content[0] = 0.0
  return content.astype(np.float32)


def test_reconstruction_ignores_padded_history():
  tf.keras.utils.set_random_seed(0)
  layer = courier.IntentionReconstruction(attention_dim=3)
  candidates = tf.random.normal([2, 4])
  history = tf.random.normal([1, 3, 4])
  mask = tf.constant([[True, True, False]])
  changed_padding = tf.concat([history[:, :2], 100.0 * tf.ones([1, 1, 4])], axis=1)
  expected = layer(candidates, history[:, :2], mask[:, :2]).numpy()
  np.testing.assert_allclose(layer(candidates, history, mask).numpy(), expected,
                             rtol=1e-5)
  np.testing.assert_allclose(layer(candidates, changed_padding, mask).numpy(),
                             expected, rtol=1e-5)
  assert expected.shape == (1, 2, 4)


def test_reconstruction_of_empty_history_is_zero():
  layer = courier.IntentionReconstruction(attention_dim=3)
  reconstructed = layer(tf.ones([2, 4]), tf.ones([1, 3, 4]),
                        tf.zeros([1, 3], tf.bool))
  np.testing.assert_array_equal(reconstructed.numpy(), np.zeros([1, 2, 4]))


def test_reconstruction_with_one_real_item_is_that_item():
  layer = courier.IntentionReconstruction(attention_dim=3)
  history = tf.constant([[[1.0, 2.0], [5.0, 5.0]]])
  reconstructed = layer(tf.ones([3, 2]), history, tf.constant([[True, False]]))
  np.testing.assert_allclose(reconstructed.numpy(), [[[1.0, 2.0]] * 3])


def test_info_nce_with_identical_rows_is_log_batch():
  batch_size = 4
  content = np.ones((6, 5), np.float32)
  model = courier.Courier(content, CONFIG)
  loss = model.compute_loss(_inputs([1, 2, 3, 4], [[1, 2, 0], [3, 0, 0],
                                                   [5, 4, 1], [2, 0, 0]]))
  np.testing.assert_allclose(loss.numpy(), math.log(batch_size), rtol=1e-5)


def test_info_nce_masks_accidental_hits_and_absent_hard_negatives():
  logits = tf.zeros([2, 4])
  # Row 0: column 1 repeats its target and column 3 is padding -> 2 logits.
  candidate_ids = tf.constant([[7, 7, 9, 0], [7, 8, 9, 5]], tf.int64)
  loss = courier.reconstruction_info_nce(logits, tf.constant([7, 8], tf.int64),
                                         candidate_ids)
  np.testing.assert_allclose(loss.numpy(), (math.log(2) + math.log(4)) / 2,
                             rtol=1e-5)


def test_hard_negatives_add_one_logit_each():
  tf.keras.utils.set_random_seed(0)
  model = courier.Courier(_content(), CONFIG)
  logits, candidate_ids = model.reconstruction_logits(
      _inputs([1, 2], [[3, 0], [4, 5]], hard_negatives=[[5, 0], [0, 0]]))
  assert logits.shape == (2, 4)
  np.testing.assert_array_equal(candidate_ids.numpy(), [[1, 2, 5, 0], [1, 2, 0, 0]])


def test_reconstruction_only_loss_is_zero_for_a_collapsed_encoder():
  model = courier.Courier(np.ones((6, 5), np.float32),
                          courier.CourierConfig(encoder_units=(8, 4),
                                                contrastive=False))
  loss = model.compute_loss(_inputs([1, 2], [[3, 0], [4, 5]]))
  np.testing.assert_allclose(loss.numpy(), 0.0, atol=1e-6)


def test_training_lowers_the_contrastive_loss():
  tf.keras.utils.set_random_seed(0)
  # Users who clicked item i click its pair partner i ^ 1 next.
  history = np.array([[1, 0], [2, 0], [3, 0], [4, 0], [5, 0], [6, 0]])
  inputs = _inputs([2, 1, 4, 3, 6, 5], history)
  model = courier.Courier(np.eye(7, dtype=np.float32),
                          courier.CourierConfig(encoder_units=(16, 8)))
  optimizer = tf.keras.optimizers.Adam(0.05)
  first = float(model.compute_loss(inputs))
  for _ in range(20):
    with tf.GradientTape() as tape:
      loss = model.compute_loss(inputs, training=True)
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
  assert float(model.compute_loss(inputs)) < first - 0.5


def test_feature_dropout_contrastive_loss_is_finite():
  tf.keras.utils.set_random_seed(0)
  model = courier.FeatureDropoutContrastive(_content(), CONFIG)
  loss = model.compute_loss({features.ITEM_INDEX: tf.constant([1, 2, 3], tf.int64)})
  assert np.isfinite(loss.numpy()) and loss.numpy() > 0


def test_item_embedding_table_has_unit_rows_and_zero_padding():
  encoder = courier.ContentEncoder(_content(), (8, 4))
  table = courier.item_embedding_table(encoder, batch_size=4)
  assert table.shape == (6, 4)
  np.testing.assert_array_equal(table[0], 0.0)
  np.testing.assert_allclose(np.linalg.norm(table[1:], axis=1), 1.0, rtol=1e-5)


def test_embedding_variance():
  collapsed = np.array([[0, 0], [1, 0], [1, 0]], np.float32)
  spread = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
  assert courier.embedding_variance(collapsed) == pytest.approx(0.0)
  assert courier.embedding_variance(spread) == pytest.approx(0.5)


def test_config_rejects_unknown_hyperparameters():
  with pytest.raises(ValueError, match="unknown CourierConfig"):
    courier.CourierConfig.from_dict({"bogus": 1})
  assert courier.CourierConfig.from_dict(
      {"encoder_units": [4, 2]}).encoder_units == (4, 2)


IMAGE_CONFIG = courier.CourierConfig(encoder_units=(8, 4), temperature=0.5,
                                     image_filters=(4,), image_embedding_dim=3)


def _images(num_items=6, has_image=(0, 1, 1, 1, 0, 1)):
  """A random 6x4 image per item; item 4's was skipped."""
  images = np.random.default_rng(0).integers(0, 256, (num_items, 6, 4, 3),
                                             dtype=np.uint8)
  return courier.ItemImages(images, np.array(has_image, bool))


def test_the_image_branch_embeds_each_items_own_image():
  tf.keras.utils.set_random_seed(0)
  model = courier.Courier(np.zeros((6, 5), np.float32), IMAGE_CONFIG,
                          _images())
  embedded = model.encoder.image_embedding(tf.constant([[1, 2], [2, 3]],
                                                       tf.int64)).numpy()
  assert embedded.shape == (2, 2, 3)
  np.testing.assert_allclose(embedded[0, 1], embedded[1, 0], rtol=1e-6)
  assert not np.allclose(embedded[0, 0], embedded[0, 1])
  # Same content for every item: only the image tells items apart.
  items = model.encoder(tf.constant([1, 2], tf.int64)).numpy()
  assert not np.allclose(items[0], items[1])


def test_an_item_whose_image_was_skipped_reads_the_learned_no_image_vector():
  tf.keras.utils.set_random_seed(0)
  encoder = courier.Courier(np.zeros((6, 5), np.float32), IMAGE_CONFIG,
                            _images()).encoder
  table = courier.image_embedding_table(encoder, batch_size=4)
  assert table.shape == (6, 3)
  np.testing.assert_array_equal(table[0], 0.0)
  np.testing.assert_allclose(table[4], encoder.missing_image.numpy())
  assert np.abs(table[4]).sum() > 0
  assert encoder.missing_image.trainable


def test_courier_training_trains_the_image_encoder():
  tf.keras.utils.set_random_seed(0)
  model = courier.Courier(np.zeros((6, 5), np.float32), IMAGE_CONFIG,
                          _images())
  inputs = _inputs([2, 1, 3, 5], [[1, 0], [2, 0], [5, 3], [3, 0]])
  with tf.GradientTape() as tape:
    loss = model.compute_loss(inputs, training=True)
  cnn_variables = model.encoder.image_encoder.trainable_variables
  gradients = tape.gradient(loss, cnn_variables)
  assert cnn_variables and all(
      gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0
      for gradient in gradients)


def test_images_must_cover_every_content_row():
  with pytest.raises(ValueError, match="5 item images for 6 content rows"):
    courier.Courier(np.zeros((6, 5), np.float32), IMAGE_CONFIG,
                    _images(num_items=5, has_image=(1,) * 5))
