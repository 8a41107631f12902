"""Tests for the generic image pre-training baselines."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.ctr import courier
from models.ctr import image_pretraining
from models.layers import image_encoder

IDENTITY = image_pretraining.Augmentation(crop_area=(1.0, 1.0), flip=False,
                                          brightness=0.0, contrast=0.0,
                                          saturation=0.0)


def _images(num_items=5, height=6, width=4, seed=0):
  pixels = np.random.default_rng(seed).integers(
      0, 256, (num_items, height, width, 3), dtype=np.uint8)
  pixels[0] = 0
  has_image = np.arange(num_items) > 0
  return courier.ItemImages(pixels, has_image)


class _MeanColour(tf.keras.layers.Layer):
  """A fixed encoder: each image's mean colour, scaled to [0, 1]."""

  def call(self, images):
    return tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2]) / 255.0


def test_augmentation_without_ranges_is_the_identity():
  images = _images().images
  np.testing.assert_allclose(
      image_pretraining.augment(tf.constant(images), IDENTITY).numpy(),
      images.astype(np.float32), atol=1e-3)


def test_flip_only_gives_each_image_or_its_mirror_and_both_occur():
  tf.keras.utils.set_random_seed(0)
  images = np.repeat(_images(num_items=2).images[1:], 64, axis=0)
  views = image_pretraining.augment(
      tf.constant(images), image_pretraining.Augmentation(
          crop_area=(1.0, 1.0), flip=True, brightness=0.0, contrast=0.0,
          saturation=0.0)).numpy()
  same = np.all(np.isclose(views, images, atol=1e-3), axis=(1, 2, 3))
  mirrored = np.all(np.isclose(views, images[:, :, ::-1], atol=1e-3),
                    axis=(1, 2, 3))
  assert np.all(same | mirrored)
  assert same.any() and mirrored.any()


def test_default_augmentation_stays_in_pixel_range_and_changes_images():
  tf.keras.utils.set_random_seed(0)
  images = _images(num_items=8, height=12, width=8).images
  views = image_pretraining.augment(
      tf.constant(images), image_pretraining.Augmentation()).numpy()
  assert views.shape == images.shape
  assert views.min() >= 0.0 and views.max() <= 255.0
  assert not np.allclose(views[1:], images[1:], atol=1.0)


def test_contrastive_loss_of_identical_views_is_info_nce_of_the_projections():
  tf.keras.utils.set_random_seed(0)
  images = _images()
  model = image_pretraining.AugmentationContrastive(
      images, _MeanColour(), projection_units=(3,), temperature=0.5,
      augmentation=IDENTITY)
  items = tf.constant([1, 2, 3, 4])
  loss = float(model.compute_loss({features.ITEM_INDEX: items}))
  projected = model.projection(_MeanColour()(tf.gather(images.images,
                                                       items))).numpy()
  unit = projected / np.linalg.norm(projected, axis=1, keepdims=True)
  logits = unit @ unit.T / 0.5
  expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - np.diag(logits))
  assert loss == pytest.approx(expected, rel=1e-5)


def test_contrastive_training_lowers_the_loss():
  tf.keras.utils.set_random_seed(0)
  images = _images(num_items=17, height=16, width=8)
  model = image_pretraining.AugmentationContrastive(
      images, image_encoder.SmallCnn((4,), 8), projection_units=(8,))
  inputs = {features.ITEM_INDEX: tf.range(1, 17)}
  before = float(model.compute_loss(inputs))
  model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
  model.fit(tf.data.Dataset.from_tensors(inputs).repeat(40), verbose=0)
  assert float(model.compute_loss(inputs)) < before


def test_supervised_loss_is_cross_entropy_of_labelled_items_only():
  tf.keras.utils.set_random_seed(0)
  images = _images()
  model = image_pretraining.SupervisedImageClassifier(images, _MeanColour(), 3)
  items = tf.constant([1, 2, 3])
  logits = model(items).numpy()
  expected = np.log(np.exp(logits[[0, 2]]).sum(axis=1)) - logits[[0, 2], [2, 0]]
  loss = model.compute_loss({features.ITEM_INDEX: items,
                             image_pretraining.ITEM_CLASS: tf.constant([2, -1, 0])})
  assert float(loss) == pytest.approx(expected.mean(), rel=1e-5)


def test_encoder_table_embeds_every_item_once_with_a_zero_padding_row():
  images = _images()
  table = image_pretraining.encoder_table(_MeanColour(), images, batch_size=2)
  expected = images.images.reshape(5, -1, 3).mean(axis=1) / 255.0
  expected[0] = 0.0
  np.testing.assert_allclose(table, expected, rtol=1e-5)


def test_encoder_table_refuses_an_item_without_an_image():
  images = _images()
  has_image = images.has_image.copy()
  has_image[3] = False
  with pytest.raises(ValueError, match="item index 3"):
    image_pretraining.encoder_table(_MeanColour(), courier.ItemImages(
        images.images, has_image))


def _without_image(images, *indices):
  has_image = images.has_image.copy()
  has_image[list(indices)] = False
  return courier.ItemImages(images.images, has_image)


def test_encoder_table_can_zero_the_rows_of_items_without_an_image():
  images = _without_image(_images(), 3)
  table = image_pretraining.encoder_table(_MeanColour(), images,
                                          zero_without_image=True)
  expected = images.images.reshape(5, -1, 3).mean(axis=1) / 255.0
  expected[[0, 3]] = 0.0
  np.testing.assert_allclose(table, expected, rtol=1e-5)


def test_simclr_passes_over_every_item_with_an_image():
  examples = image_pretraining.objective_examples(
      courier.SIMCLR_OBJECTIVE, _without_image(_images(), 3))
  assert examples.keys() == {features.ITEM_INDEX}
  np.testing.assert_array_equal(examples[features.ITEM_INDEX], [1, 2, 4])


def test_supervised_passes_over_the_items_with_an_image_and_a_class():
  examples = image_pretraining.objective_examples(
      courier.SUPERVISED_OBJECTIVE, _without_image(_images(), 3),
      classes=np.array([-1, 0, -1, 1, 2]))
  np.testing.assert_array_equal(examples[features.ITEM_INDEX], [1, 4])
  np.testing.assert_array_equal(examples[image_pretraining.ITEM_CLASS], [0, 2])


def test_an_objective_without_items_to_train_on_is_refused():
  with pytest.raises(ValueError, match="no item to pre-train on"):
    image_pretraining.objective_examples(
        courier.SUPERVISED_OBJECTIVE, _images(), classes=np.full(5, -1))
  with pytest.raises(ValueError, match="not a generic image objective"):
    image_pretraining.objective_examples(courier.COURIER_OBJECTIVE, _images())


@pytest.mark.parametrize("objective", [courier.SIMCLR_OBJECTIVE,
                                       courier.SUPERVISED_OBJECTIVE])
def test_pretrain_encoder_trains_the_encoder_it_is_given(objective):
  tf.keras.utils.set_random_seed(0)
  images = _images(num_items=17, height=16, width=8)
  # Odd items (class 1) are darker: a class the images show.
  images.images[1::2] //= 4
  encoder = image_encoder.SmallCnn((4,), 8)
  before = image_pretraining.encoder_table(encoder, images)
  config = courier.CourierConfig(encoder_units=(8,), epochs=20, batch_size=8,
                                 learning_rate=0.01)
  losses = image_pretraining.pretrain_encoder(
      objective, images, encoder, config, seed=0, classes=np.arange(17) % 2)
  assert len(losses) == 20
  assert not np.allclose(image_pretraining.encoder_table(encoder, images),
                         before)
  if objective == courier.SUPERVISED_OBJECTIVE:
    # Two classes: from about log 2 to separating them.
    assert losses[0] > 0.5 > losses[-1]
