"""Per-interaction train rows rebuilt from per-user transformed examples.

A train example holds one user's positives as a sequence
(`features.SEQUENCE_*`, oldest first), each transformed once, and the CTR
negatives of every position (`features.NEGATIVE_*`, the same number `k` for
each position of an example, possibly 0). `expand_user_rows` turns a batch
of such examples back into the per-interaction rows the models read: per
example, per position `p`, the positive row (item `p`, history the items
before it) followed by its `k` negative rows, which share the positive's
user, history, query and time.

Everything is gathered from the batch's flat values with computed indices,
so a whole batch of users is expanded by a fixed number of ops (inside
`tf.data`, see `models.train_inputs.input_dataset`).
"""

from __future__ import annotations

from typing import Mapping, Union

import tensorflow as tf

from data import features

# A varlen feature as tfxio parses it, or a per-example dense feature.
Feature = Union[tf.Tensor, tf.SparseTensor, tf.RaggedTensor]

# The features `expand_user_rows` returns: name -> shape of one row.
ROW_SHAPES = {
    features.USER_INDEX: (),
    features.ITEM_INDEX: (),
    features.HISTORY_ITEM_INDICES: (features.HISTORY_LENGTH,),
    features.HISTORY_LENGTH_FEATURE: (),
    features.VIDEO_NEIGHBOUR_INDICES: (features.HISTORY_LENGTH,),
    features.ITEM_NEIGHBOUR_INDICES: (features.HISTORY_LENGTH,),
    features.TITLE_TOKEN_INDICES: (features.TITLE_LENGTH,),
    features.CATEGORY_INDICES: (features.CATEGORY_LENGTH,),
    features.QUERY_TOKEN_INDICES: (features.QUERY_LENGTH,),
    features.HISTORY_QUERY_TOKEN_INDICES: (
        features.HISTORY_LENGTH * features.QUERY_LENGTH,),
    features.HOUR_OF_DAY: (),
    features.DAY_OF_WEEK: (),
    features.TIMESTAMP_Z: (),
    features.LABEL: (),
}


def as_ragged(value: Feature) -> tf.RaggedTensor:
  """A `[batch, None]` varlen feature as a RaggedTensor."""
  if isinstance(value, tf.SparseTensor):
    return tf.RaggedTensor.from_sparse(value)
  return value


def _flat(value: Feature, width: int = 1) -> tf.Tensor:
  """A varlen feature's values over the batch: `[count]`, or with a
  `width`, `[count / width, width]`.

  Examples follow one another in the flat values, so entry `i` of the
  result is the `i`-th position (or negative) of the whole batch.
  """
  values = as_ragged(value).flat_values
  if width == 1:
    return values
  return tf.reshape(values, [-1, width])


def _neighbours(history: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
  """The `keep` slots of each `[N, HISTORY_LENGTH]` history, compacted to
  the left in history (oldest-first) order, as
  `transforms.dual_graph.split_history` does for the eval examples."""
  return tf.ragged.boolean_mask(history, keep).to_tensor(
      default_value=features.PADDING_INDEX,
      shape=[None, features.HISTORY_LENGTH])


def _history_features(items: tf.Tensor, position: tf.Tensor,
                      is_video: tf.Tensor, queries: tf.Tensor,
                      history_length: int) -> dict[str, tf.Tensor]:
  """Each position's history and the features drawn from it.

  Args:
    items: `[N]` item of each position of the batch, examples one after the
      other.
    position: `[N]` each one's position in its example.
    is_video: `[N]` whether each one is a video.
    queries: `[N, QUERY_LENGTH]` each one's query tokens.
    history_length: the most history items a position keeps.

  Returns:
    The history features of `ROW_SHAPES`, `[N, width]` or `[N]`.
  """
  # History slot s of the position at flat index i holds flat index
  # i - count + s, where count = min(position, history_length) items of the
  # same example precede it within the cap.
  count = tf.minimum(position, history_length)[:, tf.newaxis]
  slots = tf.range(features.HISTORY_LENGTH, dtype=tf.int64)[tf.newaxis, :]
  filled = slots < count
  flat_index = tf.range(tf.shape(items, out_type=tf.int64)[0])[:, tf.newaxis]
  # Empty slots read index 0 (valid whenever there is a position) and are
  # masked.
  source = tf.where(filled, flat_index - count + slots, 0)
  padding = tf.constant(features.PADDING_INDEX, tf.int64)
  history = tf.where(filled, tf.gather(items, source), padding)
  video_slots = tf.gather(is_video, source)
  return {
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_LENGTH_FEATURE: tf.reduce_sum(
          tf.cast(history != features.PADDING_INDEX, tf.int64), axis=1),
      features.VIDEO_NEIGHBOUR_INDICES: _neighbours(
          history, filled & video_slots),
      features.ITEM_NEIGHBOUR_INDICES: _neighbours(
          history, filled & tf.logical_not(video_slots)),
      features.HISTORY_QUERY_TOKEN_INDICES: tf.reshape(
          tf.where(filled[:, :, tf.newaxis], tf.gather(queries, source),
                   padding),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
  }


class _RowPlacement:
  """Where each flat position's rows go in the expanded batch.

  The block of flat position i, its positive then its k negatives, starts
  at row `positive_rows[i]`; negative n of the batch is row
  `negative_rows[n]`.
  """

  def __init__(self, sequence: tf.RaggedTensor, example: tf.Tensor,
               negatives: tf.RaggedTensor):
    # An example without positions has no rows; the maximum only keeps its
    # (empty) division defined.
    negatives_per_example = negatives.row_lengths() // tf.maximum(
        sequence.row_lengths(), 1)
    rows_per_position = 1 + tf.gather(negatives_per_example, example)
    self.positive_rows = tf.cumsum(rows_per_position, exclusive=True)
    # An example's negative number `in_example` is negative
    # `in_example % k` of its position `in_example // k`.
    negative_example = negatives.value_rowids()
    in_example = (
        tf.range(tf.shape(negatives.flat_values, out_type=tf.int64)[0])
        - tf.gather(negatives.row_splits, negative_example))
    k = tf.gather(negatives_per_example, negative_example)
    self.negative_rows = (
        tf.gather(self.positive_rows,
                  tf.gather(sequence.row_splits, negative_example)
                  + in_example // k)
        + 1 + in_example % k)
    self._position_of_row = tf.repeat(
        tf.range(tf.shape(example, out_type=tf.int64)[0]), rows_per_position)
    self._stitch_indices = [tf.cast(self.positive_rows, tf.int32),
                            tf.cast(self.negative_rows, tf.int32)]

  def of_positions(self, per_position: tf.Tensor) -> tf.Tensor:
    """Each row's value of a feature its negatives share with its positive,
    from that feature at every flat position."""
    return tf.gather(per_position, self._position_of_row)

  def stitched(self, positives: tf.Tensor, negatives: tf.Tensor) -> tf.Tensor:
    """Each row's value of a feature the positives and the negatives each
    have of their own, from its values at every position and negative."""
    return tf.dynamic_stitch(self._stitch_indices, [positives, negatives])


def _position_features(batch: Mapping[str, Feature], sequence: tf.RaggedTensor,
                       example: tf.Tensor, history_length: int
                       ) -> dict[str, tf.Tensor]:
  """The features a position's negatives share with its positive, at every
  flat position: user, query, time and the history before it."""
  items = tf.cast(sequence.flat_values, tf.int64)
  position = (tf.range(tf.shape(items, out_type=tf.int64)[0])
              - tf.gather(sequence.row_splits, example))
  queries = tf.cast(_flat(batch[features.SEQUENCE_QUERY_TOKEN_INDICES],
                          features.QUERY_LENGTH), tf.int64)
  return {
      features.USER_INDEX: tf.gather(
          tf.cast(tf.reshape(batch[features.USER_INDEX], [-1]), tf.int64),
          example),
      features.QUERY_TOKEN_INDICES: queries,
      features.HOUR_OF_DAY: tf.cast(
          _flat(batch[features.SEQUENCE_HOUR_OF_DAY]), tf.int64),
      features.DAY_OF_WEEK: tf.cast(
          _flat(batch[features.SEQUENCE_DAY_OF_WEEK]), tf.int64),
      features.TIMESTAMP_Z: tf.cast(
          _flat(batch[features.SEQUENCE_TIMESTAMP_Z]), tf.float32),
      **_history_features(
          items, position,
          tf.equal(_flat(batch[features.SEQUENCE_IS_VIDEO]), 1), queries,
          history_length),
  }


# Row feature <- the positives' feature and the negatives', of this width.
_OWN_ITEM_FEATURES = (
    (features.ITEM_INDEX, features.SEQUENCE_ITEM_INDICES,
     features.NEGATIVE_ITEM_INDICES, 1),
    (features.TITLE_TOKEN_INDICES, features.SEQUENCE_TITLE_TOKEN_INDICES,
     features.NEGATIVE_TITLE_TOKEN_INDICES, features.TITLE_LENGTH),
    (features.CATEGORY_INDICES, features.SEQUENCE_CATEGORY_INDICES,
     features.NEGATIVE_CATEGORY_INDICES, features.CATEGORY_LENGTH),
)


def _own_item_features(batch: Mapping[str, Feature],
                       placement: _RowPlacement) -> dict[str, tf.Tensor]:
  """Each row's own item, title and categories, its positive's or its
  negative's, and its label."""
  rows = {
      name: placement.stitched(
          tf.cast(_flat(batch[positive_name], width), tf.int64),
          tf.cast(_flat(batch[negative_name], width), tf.int64))
      for name, positive_name, negative_name, width in _OWN_ITEM_FEATURES}
  rows[features.LABEL] = placement.stitched(
      tf.ones(tf.shape(placement.positive_rows), tf.float32),
      tf.zeros(tf.shape(placement.negative_rows), tf.float32))
  return rows


def expand_user_rows(batch: Mapping[str, Feature],
                     history_length: int = features.HISTORY_LENGTH
                     ) -> dict[str, tf.Tensor]:
  """Expands per-user transformed examples into per-interaction rows.

  Args:
    batch: transformed examples: `features.USER_INDEX` `[B]` (or `[B, 1]`),
      and the `SEQUENCE_*` and `NEGATIVE_*` features as `[B, None]` sparse
      or ragged tensors. Example `b` has `n_b >= 1` positions and `n_b * k_b`
      negatives; per-position features of width `w` hold `n_b * w` values,
      position `p` in `[p * w, (p + 1) * w)`, and negative `j` of position
      `p` is negative `p * k_b + j`. Other keys are ignored.
    history_length: the most history items a row keeps (the newest ones),
      1 to `features.HISTORY_LENGTH`.

  Returns:
    `ROW_SHAPES`' features, `[R]` or `[R, width]` tensors over
    `R = sum_b n_b (1 + k_b)` rows: example by example, position by
    position, each positive row (`LABEL` 1) followed by its negatives
    (`LABEL` 0). A row's history is the newest `history_length` of the
    example's items before its position, oldest first, 0-padded to
    `features.HISTORY_LENGTH`; a negative has its own item, title and
    categories and its positive's everything else.

  Raises:
    ValueError: if `history_length` is out of range.
  """
  if not 1 <= history_length <= features.HISTORY_LENGTH:
    raise ValueError(f"history_length must be in [1, {features.HISTORY_LENGTH}]"
                     f", got {history_length}")
  # Positions: the batch's positives, flat; `example` says whose each is.
  sequence = as_ragged(batch[features.SEQUENCE_ITEM_INDICES])
  example = sequence.value_rowids()
  placement = _RowPlacement(sequence, example,
                            as_ragged(batch[features.NEGATIVE_ITEM_INDICES]))
  rows = {name: placement.of_positions(values) for name, values in
          _position_features(batch, sequence, example, history_length).items()}
  rows.update(_own_item_features(batch, placement))
  return {name: tf.ensure_shape(rows[name], [None, *shape])
          for name, shape in ROW_SHAPES.items()}
