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
  def side(keep):
    kept = tf.sparse.retain(history_indices, keep)
    ragged = tf.RaggedTensor.from_value_rowids(
        tf.cast(kept.values, tf.int64), kept.indices[:, 0],
        nrows=history_indices.dense_shape[0])
    return ragged.to_tensor(default_value=features.PADDING_INDEX,
                            shape=[None, length])
  return side(is_video.values), side(tf.logical_not(is_video.values))
