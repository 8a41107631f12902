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

  def neighbours(keep: tf.Tensor) -> tf.Tensor:
    # Compacted to the left in history (oldest-first) order, as
    # `transforms.dual_graph.split_history` does for the eval examples.
    return tf.ragged.boolean_mask(history, keep).to_tensor(
        default_value=features.PADDING_INDEX,
        shape=[None, features.HISTORY_LENGTH])

  return {
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_LENGTH_FEATURE: tf.reduce_sum(
          tf.cast(history != features.PADDING_INDEX, tf.int64), axis=1),
      features.VIDEO_NEIGHBOUR_INDICES: neighbours(filled & video_slots),
      features.ITEM_NEIGHBOUR_INDICES: neighbours(
          filled & tf.logical_not(video_slots)),
      features.HISTORY_QUERY_TOKEN_INDICES: tf.reshape(
          tf.where(filled[:, :, tf.newaxis], tf.gather(queries, source),
                   padding),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
  }


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
  sequence = as_ragged(batch[features.SEQUENCE_ITEM_INDICES])
  negatives = as_ragged(batch[features.NEGATIVE_ITEM_INDICES])
  items = tf.cast(sequence.flat_values, tf.int64)

  # Positions: the batch's positives, flat; `example` and `position` say
  # whose and where in its sequence each one is.
  example = sequence.value_rowids()
  position_ids = tf.range(tf.shape(items, out_type=tf.int64)[0])
  position = position_ids - tf.gather(sequence.row_splits, example)
  queries = tf.cast(_flat(batch[features.SEQUENCE_QUERY_TOKEN_INDICES],
                          features.QUERY_LENGTH), tf.int64)
  per_position = {
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

  # Rows: the block of flat position i, its positive then its k negatives,
  # starts at row positive_rows[i]. An example without positions has no
  # rows; the maximum only keeps its (empty) division defined.
  negatives_per_example = negatives.row_lengths() // tf.maximum(
      sequence.row_lengths(), 1)
  rows_per_position = 1 + tf.gather(negatives_per_example, example)
  positive_rows = tf.cumsum(rows_per_position, exclusive=True)
  # An example's negative number `in_example` is negative
  # `in_example % k` of its position `in_example // k`.
  negative_example = negatives.value_rowids()
  in_example = (tf.range(tf.shape(negatives.flat_values, out_type=tf.int64)[0])
                - tf.gather(negatives.row_splits, negative_example))
  k = tf.gather(negatives_per_example, negative_example)
  negative_rows = (
      tf.gather(positive_rows, tf.gather(sequence.row_splits, negative_example)
                + in_example // k)
      + 1 + in_example % k)
  stitch_indices = [tf.cast(positive_rows, tf.int32),
                    tf.cast(negative_rows, tf.int32)]

  def positive_or_negative(name, negative_name, width=1):
    """The positives' `name` and the negatives' `negative_name`, by row."""
    return tf.dynamic_stitch(
        stitch_indices,
        [tf.cast(_flat(batch[name], width), tf.int64),
         tf.cast(_flat(batch[negative_name], width), tf.int64)])

  rows = {name: tf.gather(values, tf.repeat(position_ids, rows_per_position))
          for name, values in per_position.items()}
  rows[features.ITEM_INDEX] = positive_or_negative(
      features.SEQUENCE_ITEM_INDICES, features.NEGATIVE_ITEM_INDICES)
  rows[features.TITLE_TOKEN_INDICES] = positive_or_negative(
      features.SEQUENCE_TITLE_TOKEN_INDICES,
      features.NEGATIVE_TITLE_TOKEN_INDICES, features.TITLE_LENGTH)
  rows[features.CATEGORY_INDICES] = positive_or_negative(
      features.SEQUENCE_CATEGORY_INDICES, features.NEGATIVE_CATEGORY_INDICES,
      features.CATEGORY_LENGTH)
  rows[features.LABEL] = tf.dynamic_stitch(
      stitch_indices, [tf.ones(tf.shape(positive_rows), tf.float32),
                       tf.zeros(tf.shape(negative_rows), tf.float32)])
  return {name: tf.ensure_shape(rows[name], [None, *shape])
          for name, shape in ROW_SHAPES.items()}
