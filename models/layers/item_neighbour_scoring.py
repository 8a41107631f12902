"""Scores a whole catalogue from a sparse item-item weight matrix, in TF.

The serving half of `models.item_item.neighbours`: B is held as each item's top
`k` (neighbour index, weight) pairs, and a user with history items h scores
item j as sum over h of B[h, j]. Scoring gathers the history items' `k`
neighbours once and adds their weights into the items of a range
(`score_range`), so a catalogue scored in chunks costs
`batch * history_length * k` per chunk and never a dense `items x items`
product nor a `[batch, num_items]` block. Plain TF ops only, so a
SavedModel of it loads in a bare TensorFlow process.
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

  def history_neighbours(self, history: tf.Tensor
                         ) -> tuple[tf.Tensor, tf.Tensor]:
    """The neighbours of a batch's history items: what `score_range` reads.

    Args:
      history: `[batch, length]` item indices; `features.PADDING_INDEX`
        where unused. An item repeated in the history counts each time.

    Returns:
      `[batch, length * k]` neighbour indices and their weights, 0 for
      padding.
    """
    history, real = _with_mask(history)
    batch_size = tf.shape(history)[0]
    neighbours = tf.gather(self.neighbour_indices, history)
    weights = (tf.gather(self.neighbour_weights, history) *
               real[:, :, tf.newaxis])
    return (tf.reshape(neighbours, tf.stack([batch_size, -1])),
            tf.reshape(weights, tf.stack([batch_size, -1])))

  def score_range(self, history_neighbours: tuple[tf.Tensor, tf.Tensor],
                  start: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """`[batch, size]` scores of items `start...start + size - 1`: per item
    j, the sum over history items h of B[h, j].

    Every range sums an item's terms in the same order, history position
    then neighbour rank, so an item scores the same bits in any range.

    Args:
      history_neighbours: `history_neighbours(history)`.
      start: the first item index.
      size: the number of items.
    """
    neighbours, weights = history_neighbours
    start = tf.cast(start, tf.int64)
    size = tf.cast(size, tf.int64)
    batch_size = tf.shape(neighbours, out_type=tf.int64)[0]
    # Row r's neighbour j adds into cell r * size + j - start of the flat
    # scores; neighbours outside the range go to -1, which is dropped.
    rows = tf.range(batch_size)[:, tf.newaxis]
    in_range = tf.logical_and(neighbours >= start, neighbours < start + size)
    cells = tf.where(in_range, rows * size + neighbours - start,
                     -tf.ones_like(neighbours))
    scores = tf.math.unsorted_segment_sum(
        tf.reshape(weights, [-1]), tf.reshape(cells, [-1]),
        batch_size * size)
    return tf.reshape(scores, tf.stack([batch_size, size]))

  def history_counts(self, history: tf.Tensor) -> tf.Tensor:
    """`[batch, num_items]` times each item occurs in the history: the query
    vector whose dot product with `item_columns` is the score."""
    history, real = _with_mask(history)
    batch_size = tf.shape(history, out_type=tf.int64)[0]
    cells = tf.range(batch_size)[:, tf.newaxis] * self.num_items + history
    counts = tf.math.unsorted_segment_sum(
        tf.reshape(real, [-1]), tf.reshape(cells, [-1]),
        batch_size * self.num_items)
    return tf.reshape(counts, tf.stack([batch_size, self.num_items]))

  def item_columns(self, items: tf.Tensor) -> tf.Tensor:
    """`[batch, num_items]` column B[:, item] of each item: what each item
    of the catalogue contributes to its score.

    One item at a time: B's `[num_items, k]` entries are matched against it,
    never a `[batch, num_items, k]` block.
    """
    def column(item):
      # A row keeps each neighbour once, so at most one entry per row is
      # summed: the sum is that weight exactly.
      return tf.reduce_sum(tf.where(
          tf.equal(self.neighbour_indices, item), self.neighbour_weights,
          tf.zeros_like(self.neighbour_weights)), axis=1)

    return tf.map_fn(column, tf.cast(items, tf.int64),
                     fn_output_signature=tf.float32, parallel_iterations=1)
