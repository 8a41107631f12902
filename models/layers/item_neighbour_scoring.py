"""Scores a whole catalogue from a sparse item-item weight matrix, in TF.

The serving half of `models.item_neighbours`: B is held as each item's top
`k` (neighbour index, weight) pairs, and a user with history items h scores
item j as sum over h of B[h, j]. Scoring gathers the history items' `k`
neighbours and adds their weights into a `[batch, num_items]` row, so a
request costs `batch * history_length * k`, not a dense `items x items`
product. Plain TF ops only, so a SavedModel of it loads in a bare
TensorFlow process.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data import features


def _with_mask(history: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """int64 `history` and its float mask, 1 at real items, 0 at padding."""
  history = tf.cast(history, tf.int64)
  return history, tf.cast(tf.not_equal(history, features.PADDING_INDEX),
                          tf.float32)


class ItemNeighbourScorer(tf.Module):
  """B as top-`k` neighbours per item, and what scores with it.

  Args:
    indices: `[num_items, k]` neighbour item indices of each item.
    weights: `[num_items, k]` B[item, neighbour].
  """

  def __init__(self, indices: np.ndarray, weights: np.ndarray):
    super().__init__()
    self.neighbour_indices = tf.Variable(indices, dtype=tf.int64,
                                         trainable=False,
                                         name="neighbour_indices")
    self.neighbour_weights = tf.Variable(weights, dtype=tf.float32,
                                         trainable=False,
                                         name="neighbour_weights")

  @property
  def num_items(self) -> tf.Tensor:
    return tf.shape(self.neighbour_indices, out_type=tf.int64)[0]

  def __call__(self, history: tf.Tensor) -> tf.Tensor:
    """`[batch, num_items]` scores: per item j, sum over history h of B[h, j].

    Args:
      history: `[batch, length]` item indices; `features.PADDING_INDEX`
        where unused. An item repeated in the history counts each time.
    """
    history, real = _with_mask(history)
    neighbours = tf.gather(self.neighbour_indices, history)
    weights = (tf.gather(self.neighbour_weights, history) *
               real[:, :, tf.newaxis])
    batch_size = tf.shape(history, out_type=tf.int64)[0]
    # Row r's neighbour j adds into cell r * num_items + j of the flat scores.
    rows = tf.range(batch_size)[:, tf.newaxis, tf.newaxis]
    cells = rows * self.num_items + neighbours
    scores = tf.math.unsorted_segment_sum(
        tf.reshape(weights, [-1]), tf.reshape(cells, [-1]),
        batch_size * self.num_items)
    return tf.reshape(scores, tf.stack([batch_size, self.num_items]))

  def history_counts(self, history: tf.Tensor) -> tf.Tensor:
    """`[batch, num_items]` times each item occurs in the history: the query
    vector whose dot product with `item_columns` is the score."""
    history, real = _with_mask(history)
    return tf.reduce_sum(
        tf.one_hot(history, tf.cast(self.num_items, tf.int32)) *
        real[:, :, tf.newaxis], axis=1)

  def item_columns(self, items: tf.Tensor) -> tf.Tensor:
    """`[batch, num_items]` column B[:, item] of each item: what each item
    of the catalogue contributes to its score."""
    num_items = self.num_items
    k = tf.shape(self.neighbour_indices, out_type=tf.int64)[1]
    rows = tf.repeat(tf.range(num_items), tf.cast(k, tf.int64))
    # sparse_dense_matmul sums entries in any order: no reorder needed.
    b = tf.SparseTensor(
        tf.stack([rows, tf.reshape(self.neighbour_indices, [-1])], axis=1),
        tf.reshape(self.neighbour_weights, [-1]),
        tf.stack([num_items, num_items]))
    chosen = tf.one_hot(tf.cast(items, tf.int64),
                        tf.cast(num_items, tf.int32))
    # B @ chosenᵀ: `[num_items, batch]`, one column of B per item.
    return tf.transpose(tf.sparse.sparse_dense_matmul(b, chosen,
                                                      adjoint_b=True))
