"""Tests for the baselines' item embedding: each feature's row, summed."""

import numpy as np
import tensorflow as tf

from models.seminar import item_features

CATEGORIES = np.array([0, 2, 1, 2])


def test_an_item_is_its_id_row_plus_its_categorys_row():
  layer = item_features.ItemFeatureEmbedding(
      item_features.ItemFeatures(CATEGORIES, num_categories=3), 2)
  layer(tf.constant([1]))
  layer.id_embedding.set_weights([np.array(
      [[0., 0.], [1., 0.], [2., 0.], [3., 0.]], np.float32)])
  layer.category_embedding.set_weights([np.array(
      [[0., 0.], [0., 10.], [0., 20.]], np.float32)])
  np.testing.assert_allclose(layer(tf.constant([[1, 2], [3, 0]])).numpy(), [
      [[1., 20.], [2., 10.]], [[3., 20.], [0., 0.]]])
  np.testing.assert_array_equal(
      layer.categories(tf.constant([3, 2])).numpy(), [2, 1])


def test_title_words_are_averaged_and_images_projected_into_the_sum():
  words = np.array([[0, 0], [1, 2], [2, 0], [0, 0]])
  images = np.array([[0.], [1.], [2.], [3.]], np.float32)
  layer = item_features.ItemFeatureEmbedding(item_features.ItemFeatures(
      CATEGORIES, 3, words=words, num_words=3, image_vectors=images), 2)
  layer(tf.constant([1]))
  layer.id_embedding.set_weights([np.zeros((4, 2), np.float32)])
  layer.category_embedding.set_weights([np.zeros((3, 2), np.float32)])
  layer.word_embedding.set_weights([np.array(
      [[0., 0.], [2., 0.], [4., 0.]], np.float32)])
  layer.image_projection.set_weights([np.array([[0., 100.]], np.float32),
                                      np.zeros(2, np.float32)])
  # Item 1: words 1 and 2 average to 3, image 1. Item 3: no word.
  np.testing.assert_allclose(layer(tf.constant([[1, 3]])).numpy(),
                             [[[3., 100.], [0., 300.]]])
