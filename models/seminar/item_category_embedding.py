"""Item embeddings from the item id and its category, for the baselines.

DIN and SIM read the same item features as SEMINAR's item view: the id and
the category (SEMINAR's text view, on Taobao the category token).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class ItemCategoryEmbedding(tf.keras.layers.Layer):
  """`id embedding + category embedding` of item indices.

  Args:
    item_categories: `[num_items]` category index of every item (0 = none,
      also at the padding item 0).
    num_categories: category vocabulary size, padding included.
    embedding_dim: width of both embeddings.
  """

  def __init__(self, item_categories: np.ndarray, num_categories: int,
               embedding_dim: int, **kwargs):
    super().__init__(**kwargs)
    self.item_categories = tf.constant(item_categories, tf.int64)
    self.id_embedding = tf.keras.layers.Embedding(len(item_categories),
                                                  embedding_dim)
    self.category_embedding = tf.keras.layers.Embedding(num_categories,
                                                        embedding_dim)

  def categories(self, items: tf.Tensor) -> tf.Tensor:
    """The category index of every item index in `items`."""
    return tf.gather(self.item_categories, items)

  def call(self, items: tf.Tensor) -> tf.Tensor:
    return (self.id_embedding(items) +
            self.category_embedding(self.categories(items)))
