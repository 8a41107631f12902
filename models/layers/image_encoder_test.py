"""Tests for the image encoders: the small CNN and a user's Keras backbone."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.layers import image_encoder

IMAGES = np.stack([np.full((12, 8, 3), value, np.uint8) for value in (0, 255)])


def test_small_cnn_embeds_each_image_to_the_output_width():
  tf.keras.utils.set_random_seed(0)
  encoder = image_encoder.SmallCnn(filters=(4, 8), output_dim=5)
  embedded = encoder(tf.constant(IMAGES)).numpy()
  assert embedded.shape == (2, 5)
  assert not np.allclose(embedded[0], embedded[1])
  # Two pooling blocks, then global pooling: any size of image embeds.
  assert encoder(tf.zeros([1, 20, 36, 3], tf.uint8)).shape == (1, 5)


def test_small_cnn_reads_pixels_scaled_to_unit_range():
  tf.keras.utils.set_random_seed(0)
  encoder = image_encoder.SmallCnn(filters=(2,), output_dim=3)
  embedded = encoder(tf.constant(IMAGES)).numpy()
  hidden = tf.constant(IMAGES, tf.float32) / 255.0
  for layer in encoder.blocks:
    hidden = layer(hidden)
  np.testing.assert_allclose(
      embedded, encoder.projection(encoder.pooling(hidden)).numpy(),
      rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      encoder(tf.constant(IMAGES, tf.float32)).numpy(), embedded, rtol=1e-6)


def _save_backbone(path: str, feature_map: bool) -> tf.keras.Model:
  inputs = tf.keras.Input([12, 8, 3])
  hidden = tf.keras.layers.Conv2D(6, 3, padding="same")(inputs)
  if not feature_map:
    hidden = tf.keras.layers.Flatten()(hidden)
  backbone = tf.keras.Model(inputs, hidden)
  backbone.save(path)
  return backbone


@pytest.mark.parametrize("name, feature_map", [
    ("backbone.keras", True), ("backbone.h5", False), ("saved_model", True)])
def test_a_users_backbone_loads_from_its_file_pooled_and_projected(
    tmp_path, name, feature_map):
  tf.keras.utils.set_random_seed(0)
  saved = _save_backbone(str(tmp_path / name), feature_map)
  loaded = image_encoder.load_backbone(str(tmp_path / name))
  pixels = tf.constant(IMAGES, tf.float32) / 255.0
  np.testing.assert_allclose(loaded(pixels).numpy(), saved(pixels).numpy(),
                             rtol=1e-5, atol=1e-6)
  encoder = image_encoder.BackboneEncoder(loaded, output_dim=4)
  assert encoder(tf.constant(IMAGES)).shape == (2, 4)
  # Fine-tuned with the rest: the backbone's weights train.
  assert len(encoder.trainable_variables) == 4


def test_a_missing_backbone_file_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="absent.keras"):
    image_encoder.load_backbone(str(tmp_path / "absent.keras"))
