"""Tests for the id + category item embedding."""

import numpy as np
import tensorflow as tf

from models.seminar import item_category_embedding


def test_an_item_is_its_id_row_plus_its_categorys_row():
  layer = item_category_embedding.ItemCategoryEmbedding(
      np.array([0, 2, 1, 2]), num_categories=3, embedding_dim=2)
  layer(tf.constant([1]))
  layer.id_embedding.set_weights([np.array(
      [[0., 0.], [1., 0.], [2., 0.], [3., 0.]], np.float32)])
  layer.category_embedding.set_weights([np.array(
      [[0., 0.], [0., 10.], [0., 20.]], np.float32)])
  np.testing.assert_allclose(layer(tf.constant([[1, 2], [3, 0]])).numpy(), [
      [[1., 20.], [2., 10.]], [[3., 20.], [0., 0.]]])
  np.testing.assert_array_equal(
      layer.categories(tf.constant([3, 2])).numpy(), [2, 1])
