"""Where the values of a batch of per-user examples sit, for `preprocessing`.

A train example holds every positive of one user: its history positions
that carry their own features, then its own item (`Positives`), and each
positive's CTR negatives (`Negatives`). These flatten them over the batch
and lay per-positive values back out as `[batch, None]` features
(`Layout`), with the sparse-tensor helpers they share. Every op is in the
Transform graph, traced by every Transform run and loaded by every served
request, so each is built once and gathered with computed indices.
"""

import tensorflow as tf

from data import features


def take(values: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
  """The `values` where the `[n]` bool `keep` is true: `tf.boolean_mask`
  for a leading dimension, in a few ops where it takes a dozen; the graph is
  traced by every Transform run and loaded by every served request."""
  return tf.gather(values, tf.where(keep)[:, 0])


def fixed_length(sparse_indices: tf.SparseTensor, length: int,
                  default_value=features.PADDING_INDEX) -> tf.Tensor:
  """Densifies a sparse `[batch, None]` tensor into `[batch, length]`.

  Values past `length` are dropped, missing positions are `default_value`.
  """
  keep = sparse_indices.indices[:, 1] < length
  dense = tf.sparse.to_dense(
      tf.SparseTensor(take(sparse_indices.indices, keep),
                      take(sparse_indices.values, keep),
                      tf.stack([sparse_indices.dense_shape[0],
                                tf.constant(length, tf.int64)])),
      default_value=default_value)
  return tf.reshape(dense, [-1, length])


def row_counts(sparse: tf.SparseTensor, rows: tf.Tensor) -> tf.Tensor:
  """`[rows]` number of values in each row of a `[rows, None]` feature."""
  return tf.math.unsorted_segment_sum(
      tf.ones_like(sparse.indices[:, 0]), sparse.indices[:, 0], rows)


def newest(values: tf.SparseTensor, length: int) -> tf.SparseTensor:
  """The last `length` values of each row of a `[batch, None]` feature, left
  aligned: a train example's history holds every earlier positive, a row's
  history its newest `length`."""
  rows, columns = values.indices[:, 0], values.indices[:, 1]
  dropped = tf.maximum(
      tf.gather(row_counts(values, values.dense_shape[0]), rows) - length, 0)
  keep = columns >= dropped
  return tf.SparseTensor(
      indices=take(tf.stack([rows, columns - dropped], axis=1), keep),
      values=take(values.values, keep),
      dense_shape=tf.stack([values.dense_shape[0],
                            tf.minimum(values.dense_shape[1], length)]))


class Layout:
  """Where `[N]` or `[N, width]` values go in a `[batch, None]` feature.

  Value n belongs to row `rows[n]` at position `positions[n]`, and a
  position's `width` values fill columns `[p * width, (p + 1) * width)`.
  The indices are built once per width and shared by every feature.
  """

  def __init__(self, rows: tf.Tensor, positions: tf.Tensor, batch: tf.Tensor,
               width_in_positions: tf.Tensor):
    self.rows = rows
    self.positions = positions
    self.batch = batch
    self.width_in_positions = width_in_positions
    self._indices: dict[int, tf.Tensor] = {}

  def feature(self, values: tf.Tensor) -> tf.SparseTensor:
    if values.shape.rank == 1:
      values = values[:, tf.newaxis]
    width = values.shape[1]
    if width not in self._indices:
      columns = (self.positions[:, tf.newaxis] * width
                 + tf.range(width, dtype=tf.int64)[tf.newaxis, :])
      rows = tf.broadcast_to(self.rows[:, tf.newaxis], tf.shape(columns))
      self._indices[width] = tf.stack(
          [tf.reshape(rows, [-1]), tf.reshape(columns, [-1])], axis=1)
    return tf.SparseTensor(
        indices=self._indices[width], values=tf.reshape(values, [-1]),
        dense_shape=tf.stack([self.batch, self.width_in_positions * width]))


class Positives:
  """Where each example's positives sit, flattened over the batch.

  An example's positives are its history positions that carry their own
  features (`own_lengths[b]` of them: all of a train example's, none of an
  eval row's), then its own item. Flat position `starts[b] + p` is position
  `p` of example `b`.
  """

  def __init__(self, own_lengths: tf.Tensor):
    batch = tf.size(own_lengths, out_type=tf.int64)
    self.batch_size = batch
    self.own_lengths = own_lengths
    self.lengths = own_lengths + 1
    self.starts = tf.cumsum(self.lengths, exclusive=True)
    rows = tf.repeat(tf.range(batch), self.lengths)
    positions = tf.range(tf.reduce_sum(self.lengths)) - tf.gather(self.starts,
                                                                  rows)
    self.layout = Layout(rows, positions, batch, tf.reduce_max(self.lengths))
    # Each flat position's place in `[own history values..., currents...]`:
    # example b's own values follow the `starts[b] - b` of earlier examples.
    self._sources = tf.where(
        positions == tf.gather(own_lengths, rows),
        tf.reduce_sum(own_lengths) + rows,
        tf.gather(self.starts - tf.range(batch), rows) + positions)

  def own(self, history: tf.SparseTensor) -> tf.Tensor:
    """`[sum(own_lengths)]` the values of a history-aligned feature at the
    own positions, example after example."""
    rows, columns = history.indices[:, 0], history.indices[:, 1]
    return take(history.values, columns < tf.gather(self.own_lengths, rows))

  def values(self, own: tf.Tensor, current: tf.Tensor) -> tf.Tensor:
    """`[P, ...]` one feature at every flat position from its `own` values
    (`own()`, or values computed from them) and each example's `current`."""
    return tf.gather(tf.concat([own, current], 0), self._sources)



class Negatives:
  """Where each positive's CTR negatives sit, flattened over the batch.

  Every positive of an example has the same number of negatives
  (`per_positive[b]`), in position order; each negative is a row with its
  positive's context.
  """

  def __init__(self, ids: tf.SparseTensor, positives: Positives):
    rows = ids.indices[:, 0]
    self.per_positive = (row_counts(ids, positives.batch_size)
                         // positives.lengths)
    # Each negative's flat position among the batch's positives.
    self._positives = (
        tf.gather(positives.starts, rows) + ids.indices[:, 1]
        // tf.gather(tf.maximum(self.per_positive, 1), rows))
    self.layout = Layout(rows, ids.indices[:, 1], ids.dense_shape[0],
                         ids.dense_shape[1])

  def of_positives(self, positive_values: tf.Tensor) -> tf.Tensor:
    """`[negatives, ...]` each negative's value of a feature of its
    positive, from that feature at every flat position (`[P, ...]`)."""
    return tf.gather(positive_values, self._positives)
