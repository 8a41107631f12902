"""Item embeddings from every item feature, for the baselines.

DIN, SIM and SASRec-class read the same item features as SEMINAR's item
views: the id, the category (on Taobao the item's only text), the words of
the item's title where it has one, and a frozen image vector where the
catalogue has photos.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from data import features
from models.layers import pooling


@dataclasses.dataclass(frozen=True)
class ItemFeatures:
  """Every item's features, indexed by item index (0 is padding).

  Attributes:
    categories: `[num_items]` category index (0 = none, also at padding).
    num_categories: category vocabulary size, padding included.
    words: `[num_items, W]` title word indices, 0-padded; None: no titles.
    num_words: word vocabulary size, padding included.
    image_vectors: `[num_items, I]` frozen image vectors; None: no photos.
  """
  categories: np.ndarray
  num_categories: int
  words: np.ndarray | None = None
  num_words: int = 0
  image_vectors: np.ndarray | None = None


class ItemFeatureEmbedding(tf.keras.layers.Layer):
  """`id + category (+ mean title word) (+ projected image)` embeddings.

  Args:
    item_features: the catalogue's features.
    embedding_dim: width of every embedding.
  """

  def __init__(self, item_features: ItemFeatures, embedding_dim: int,
               **kwargs):
    super().__init__(**kwargs)
    self.item_categories = tf.constant(item_features.categories, tf.int64)
    self.id_embedding = tf.keras.layers.Embedding(
        len(item_features.categories), embedding_dim)
    self.category_embedding = tf.keras.layers.Embedding(
        item_features.num_categories, embedding_dim)
    self.item_words = None
    if item_features.words is not None and item_features.words.shape[1]:
      self.item_words = tf.constant(item_features.words, tf.int64)
      self.word_embedding = tf.keras.layers.Embedding(
          item_features.num_words, embedding_dim)
      self.pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.image_vectors = None
    if item_features.image_vectors is not None:
      self.image_vectors = tf.constant(item_features.image_vectors,
                                       tf.float32)
      self.image_projection = tf.keras.layers.Dense(embedding_dim)

  def categories(self, items: tf.Tensor) -> tf.Tensor:
    """The category index of every item index in `items`."""
    return tf.gather(self.item_categories, items)

  def call(self, items: tf.Tensor) -> tf.Tensor:
    vectors = (self.id_embedding(items) +
               self.category_embedding(self.categories(items)))
    if self.item_words is not None:
      flat = tf.reshape(items, [-1])
      words = tf.gather(self.item_words, flat)
      pooled = self.pooling(words, self.word_embedding(words))
      vectors += tf.reshape(pooled, tf.shape(vectors))
    if self.image_vectors is not None:
      vectors += self.image_projection(tf.gather(self.image_vectors, items))
    return vectors
