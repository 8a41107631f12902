"""SEMINAR's pair encoder: item, query and (query, item) pair embeddings.

Shared by the pretraining search unit (`seminar_psu`) and the retriever
(`seminar`), which each own one and copy the PSU's into the retriever's:

- item embedding: a softmax-gated mix of its ID embedding and projections of
  its mean text/attribute token embedding and (optional) image vector
  ("views");
- query embedding: the mean of its keyword embeddings; keywords and item text
  share one token table;
- pair embedding: a sigmoid-gated mix of the query and item embeddings.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data import features
from models.layers import pooling


class PairEncoder(tf.keras.layers.Layer):
  """Item, query and (query, item) pair embeddings.

  Args:
    item_tokens: `[num_items, T]` token indices of every item's text.
    num_tokens: token vocabulary size (padding included); queries share it.
    embedding_dim: width of every embedding.
    use_text: mix the text/attribute view into item embeddings.
    use_queries: mix query embeddings into pairs; off, a pair is its item.
    image_vectors: `[num_items, I]` image vectors, or None.
  """

  def __init__(self, item_tokens: np.ndarray, num_tokens: int,
               embedding_dim: int, use_text: bool = True,
               use_queries: bool = True,
               image_vectors: np.ndarray | None = None, **kwargs):
    super().__init__(**kwargs)
    self.use_text = use_text
    self.use_queries = use_queries
    self.item_tokens = tf.constant(item_tokens, tf.int64)
    self.image_vectors = (None if image_vectors is None else
                          tf.constant(image_vectors, tf.float32))
    self.id_embedding = tf.keras.layers.Embedding(len(item_tokens),
                                                  embedding_dim)
    self.token_embedding = tf.keras.layers.Embedding(num_tokens, embedding_dim)
    self.text_projection = tf.keras.layers.Dense(embedding_dim)
    self.image_projection = tf.keras.layers.Dense(embedding_dim)
    self.view_gate = tf.keras.layers.Dense(self.num_views)
    self.pair_gate = tf.keras.layers.Dense(embedding_dim, activation="sigmoid")
    self.pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)

  def _pool(self, indices: tf.Tensor) -> tf.Tensor:
    """Mean token embedding of `[..., T]` token indices, any leading rank."""
    width = tf.shape(indices)[-1]
    flat = tf.reshape(indices, [-1, width])
    pooled = self.pooling(flat, self.token_embedding(flat))
    return tf.reshape(pooled, tf.concat(
        [tf.shape(indices)[:-1], [self.token_embedding.output_dim]], 0))

  def build_weights(self) -> None:
    """Creates every weight, whichever objectives will use them."""
    items = tf.constant([[1]], tf.int64)
    self.pairs(self.items(items), tf.zeros([1, 1, 1], tf.int64))

  @property
  def num_views(self) -> int:
    return 1 + int(self.use_text) + int(self.image_vectors is not None)

  def views(self, items: tf.Tensor) -> list[tf.Tensor]:
    """ID, text (if used) and image (if given) views, each `[..., dim]`."""
    views = [self.id_embedding(items)]
    if self.use_text:
      tokens = tf.gather(self.item_tokens, items)
      views.append(self.text_projection(self._pool(tokens)))
    if self.image_vectors is not None:
      views.append(self.image_projection(tf.gather(self.image_vectors, items)))
    return views

  def items(self, items: tf.Tensor) -> tf.Tensor:
    """Gated mix of an item's views, `[..., dim]`."""
    views = self.views(items)
    if len(views) == 1:
      return views[0]
    gates = tf.nn.softmax(self.view_gate(tf.concat(views, -1)), axis=-1)
    return tf.einsum("...v,...vd->...d", gates, tf.stack(views, axis=-2))

  def queries(self, keywords: tf.Tensor) -> tf.Tensor:
    """Mean keyword embedding of `[..., Q]` keyword indices."""
    return self._pool(keywords)

  def pairs(self, item_vectors: tf.Tensor, keywords: tf.Tensor) -> tf.Tensor:
    """Gated mix of query and item embeddings; the item alone without
    queries."""
    if not self.use_queries:
      return item_vectors
    queries = self.queries(keywords)
    gate = self.pair_gate(tf.concat([item_vectors, queries], -1))
    return gate * item_vectors + (1.0 - gate) * queries
