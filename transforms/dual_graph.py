"""GMN's dual graph inside the TensorFlow graph.

The pandas half (`data.dual_graph`) builds the graph from a whole log for the
offline benchmark; these are its tensor counterparts: the Transform step
splits each example's history into video and item neighbours, and training
pads the predicted video out of its own neighbour list.
"""

from __future__ import annotations

import tensorflow as tf

from data import features


def drop_target(neighbours: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
  """Pads out the target from its own example's video neighbours.

  A training example (user, video) must not see the video it is asked to
  predict; the hole this leaves is just another padded slot.

  Args:
    neighbours: `[batch, cap]` video neighbour indices.
    targets: `[batch]` the example's video index.

  Returns:
    `neighbours` with every occurrence of the target set to padding.
  """
  targets = tf.cast(targets, neighbours.dtype)[:, tf.newaxis]
  return tf.where(tf.equal(neighbours, targets),
                  tf.constant(features.PADDING_INDEX, neighbours.dtype), neighbours)


def split_history(history_indices: tf.SparseTensor, is_video: tf.SparseTensor,
                  length: int) -> tuple[tf.Tensor, tf.Tensor]:
  """Splits a time-ordered history into video and item neighbour lists.

  The Transform step of the pipeline: the history (the user's most recent
  positives, oldest first, capped by `examples.build_rows`) becomes the two
  sides of the dual graph, each compacted to the left and 0-padded.

  Args:
    history_indices: `[batch, None]` item indices of the history.
    is_video: `[batch, None]` booleans at the same positions.
    length: columns of each output; longer sides keep their oldest entries,
      which cannot happen when `length` is the history cap.

  Returns:
    `(video_neighbours, item_neighbours)`, each `[batch, length]` int64.
  """
  rows = history_indices.indices[:, 0]
  values = tf.cast(history_indices.values, tf.int64)
  shape = tf.stack([history_indices.dense_shape[0], length])
  def side(keep):
    kept = tf.where(keep)[:, 0]
    kept_rows = tf.gather(rows, kept)
    # The entries are in row order, so an entry's column on its side is its
    # rank among the kept entries less that of its row's first.
    rank = tf.range(tf.size(kept, out_type=tf.int64))
    columns = rank - tf.gather(
        tf.math.unsorted_segment_min(rank, kept_rows, shape[0]), kept_rows)
    fits = tf.where(columns < length)[:, 0]
    placed = tf.scatter_nd(
        tf.gather(tf.stack([kept_rows, columns], axis=1), fits),
        tf.gather(values, tf.gather(kept, fits)), shape)
    # scatter_nd sums repeats; each (row, column) is placed once, and the
    # padding index is 0.
    return tf.reshape(placed, [-1, length])
  return side(is_video.values), side(tf.logical_not(is_video.values))
