"""The tf.Transform `preprocessing_fn` shared by every model family.

It builds the id vocabularies (with an OOV bucket), maps the per-user history
into fixed-length index sequences, derives timestamp context features and
indexes each positive of a per-user train example once. The same graph is
embedded in every exported model, so clients send raw features.
"""

import tensorflow as tf
import tensorflow_transform as tft

from data import dual_graph
from data import features
from transforms import dual_graph as dual_graph_tensors

_SECONDS_PER_HOUR = 3600
_SECONDS_PER_DAY = 86400
# 1970-01-01 was a Thursday; shifting by 3 makes Monday day 0.
_EPOCH_DAY_OF_WEEK_SHIFT = 3


def _to_vector(tensor):
  """Squeezes a `[batch, 1]` dense feature into `[batch]`."""
  if isinstance(tensor, tf.SparseTensor):
    tensor = tf.sparse.to_dense(tensor, default_value="" if tensor.dtype == tf.string else 0)
  return tf.reshape(tensor, [-1])


def _shift_past_padding(indices):
  """Moves vocabulary indices up by one so that 0 can mean padding."""
  if isinstance(indices, tf.SparseTensor):
    return tf.sparse.map_values(tf.add, indices, tf.ones_like(indices.values))
  return indices + 1


def _fixed_length(sparse_indices: tf.SparseTensor, length: int,
                  default_value=features.PADDING_INDEX) -> tf.Tensor:
  """Densifies a sparse `[batch, None]` tensor into `[batch, length]`.

  Values past `length` are dropped, missing positions are `default_value`.
  """
  keep = sparse_indices.indices[:, 1] < length
  truncated = tf.SparseTensor(
      indices=tf.boolean_mask(sparse_indices.indices, keep),
      values=tf.boolean_mask(sparse_indices.values, keep),
      dense_shape=tf.stack([sparse_indices.dense_shape[0],
                            tf.constant(length, tf.int64)]))
  return tf.sparse.to_dense(truncated, default_value=default_value)


def _apply_item_vocabulary(item_ids, deferred_vocab):
  return _shift_past_padding(
      tft.apply_vocabulary(item_ids, deferred_vocab,
                           num_oov_buckets=features.NUM_OOV_BUCKETS))


def _title_tokens(titles: tf.Tensor) -> tf.SparseTensor:
  return tf.strings.split(tf.strings.lower(titles)).to_sparse()


def _ragged(tensor) -> tf.RaggedTensor:
  """A `[batch, None]` sparse (or dense) feature as a ragged tensor."""
  if isinstance(tensor, tf.SparseTensor):
    return tf.RaggedTensor.from_sparse(tensor)
  return tf.RaggedTensor.from_tensor(tensor)


def _leading(values: tf.RaggedTensor, lengths: tf.Tensor) -> tf.RaggedTensor:
  """The first `lengths[b]` values of each row `b`."""
  positions = tf.ragged.range(values.row_lengths())
  return tf.ragged.boolean_mask(
      values, positions < tf.cast(lengths, tf.int64)[:, tf.newaxis])


def _newest(values: tf.SparseTensor, length: int) -> tf.SparseTensor:
  """The last `length` values of each row of a `[batch, None]` feature, left
  aligned: a train example's history holds every earlier positive, a row's
  history its newest `length`."""
  return _ragged(values)[:, -length:].to_sparse()


def _per_position(values: tf.Tensor, positions: tf.RaggedTensor
                  ) -> tf.SparseTensor:
  """`[P, width]` values of the flat positions of `positions` as a
  `[batch, None]` feature, position p in `[p * width, (p + 1) * width)`."""
  width = tf.shape(values, out_type=tf.int64)[1]
  return tf.RaggedTensor.from_row_lengths(
      tf.reshape(values, [-1]), positions.row_lengths() * width).to_sparse()


def _split_categories(joined: tf.Tensor) -> tf.RaggedTensor:
  """`[P]` joined category strings -> `[P, None]` categories, "" dropped."""
  categories = tf.strings.split(joined, features.CATEGORY_SEPARATOR)
  return tf.ragged.boolean_mask(categories, categories != "")


def _sequence(inputs, history_name: str, own_lengths: tf.Tensor,
              current) -> tf.RaggedTensor:
  """One feature along each example's sequence of positives: the history
  positions with their own features (`own_lengths` of them), then the
  example's own value `current` (`[batch]`)."""
  history = _leading(_ragged(inputs[history_name]), own_lengths)
  return tf.concat([history, tf.RaggedTensor.from_tensor(
      current[:, tf.newaxis])], axis=1)


def preprocessing_fn(inputs):
  """Maps raw interaction features to model features.

  Every example gets the per-interaction features of its own item (a
  serving request and an eval row are one interaction each). A train
  example is one per user and also gets the features of each of its
  positives (`features.SEQUENCE_*`, `features.NEGATIVE_*`), from which the
  Trainer expands its rows; the analyzers count those rows, each positive
  and each CTR negative once, so the vocabularies and the time scaling are
  those of the per-interaction rows.

  Args:
    inputs: raw features as described by the curated schema.

  Returns:
    The transformed features named in `data.features`.
  """
  user_ids = _to_vector(inputs[features.USER_ID])
  item_ids = _to_vector(inputs[features.ITEM_ID])
  timestamps = _to_vector(inputs[features.TIMESTAMP])
  item_types = _to_vector(inputs[features.ITEM_TYPE])
  titles = _to_vector(inputs[features.ITEM_TITLE])
  queries = _to_vector(inputs[features.QUERY])
  history = _newest(inputs[features.HISTORY_ITEM_IDS], features.HISTORY_LENGTH)

  # The example's positives: the history positions that carry their own
  # features (all of a train example's, none of an eval row's), then its
  # own item.
  own_lengths = _ragged(inputs[features.HISTORY_TIMESTAMPS]).row_lengths()
  def sequence(history_name, current):
    return _sequence(inputs, history_name, own_lengths, current)
  sequence_items = sequence(features.HISTORY_ITEM_IDS, item_ids)
  sequence_times = sequence(features.HISTORY_TIMESTAMPS, timestamps)
  sequence_is_video_type = tf.equal(
      sequence(features.HISTORY_ITEM_TYPES, item_types), dual_graph.VIDEO)
  sequence_titles = sequence(features.HISTORY_ITEM_TITLES, titles)
  sequence_queries = sequence(features.HISTORY_QUERIES, queries)
  sequence_categories = sequence(
      features.HISTORY_ITEM_CATEGORIES,
      tf.strings.reduce_join(_ragged(inputs[features.ITEM_CATEGORIES]), axis=1,
                             separator=features.CATEGORY_SEPARATOR))
  negative_items = _ragged(inputs[features.NEGATIVE_ITEM_IDS])
  # Each positive's CTR negatives, the same number for every positive of an
  # example; each is a row with the positive's context.
  negatives_per_positive = (negative_items.row_lengths()
                            // sequence_items.row_lengths())
  rows_per_positive = tf.repeat(1 + negatives_per_positive,
                                sequence_items.row_lengths())
  def per_negative(positive_values):
    return tf.repeat(positive_values, rows_per_positive - 1)
  negative_titles = _ragged(inputs[features.NEGATIVE_ITEM_TITLES]).flat_values
  negative_categories = _ragged(
      inputs[features.NEGATIVE_ITEM_CATEGORIES]).flat_values

  # Every row's item, positives' and negatives': history and target share
  # this index space.
  item_vocab = tft.vocabulary(
      tf.concat([sequence_items.flat_values, negative_items.flat_values], 0),
      vocab_filename=features.ITEM_VOCAB)
  history_indices = tf.sparse.map_values(
      _apply_item_vocabulary, history, item_vocab)

  history_dense = _fixed_length(history_indices, features.HISTORY_LENGTH)
  # GMN's dual graph: the history split by item_type. A row not of a video
  # (a negative has its positive's type) adds "", never an item id, so the
  # vocabulary exists even without videos.
  video_vocab = tft.vocabulary(
      tf.concat([
          tf.where(sequence_is_video_type.flat_values,
                   sequence_items.flat_values, ""),
          tf.where(per_negative(sequence_is_video_type.flat_values),
                   negative_items.flat_values, "")], 0),
      vocab_filename=features.VIDEO_VOCAB)
  def is_video(ids):
    return tft.apply_vocabulary(ids, video_vocab, default_value=-1) >= 0
  video_neighbours, item_neighbours = dual_graph_tensors.split_history(
      history_indices, tf.sparse.map_values(is_video, history),
      features.HISTORY_LENGTH)

  # Query words join the title token vocabulary: SEMINAR embeds keywords and
  # item text in one table. Empty queries (no search log) add no token.
  title_token_vocab = tft.vocabulary(
      _title_tokens(tf.strings.join([
          tf.concat([sequence_titles.flat_values, negative_titles], 0),
          tf.concat([sequence_queries.flat_values,
                     per_negative(sequence_queries.flat_values)], 0)],
                                    separator=" ")),
      vocab_filename=features.TITLE_TOKEN_VOCAB)
  category_vocab = tft.vocabulary(
      _split_categories(tf.concat([sequence_categories.flat_values,
                                   negative_categories], 0)),
      vocab_filename=features.CATEGORY_VOCAB)
  row_times = tf.cast(tf.repeat(sequence_times.flat_values,
                                rows_per_positive), tf.float32)
  time_mean, time_variance = tft.mean(row_times), tft.var(row_times)

  def title_token_indices(texts, length):
    return _fixed_length(_shift_past_padding(tft.apply_vocabulary(
        _title_tokens(texts), title_token_vocab,
        num_oov_buckets=features.NUM_OOV_BUCKETS)), length)

  def category_indices(categories):
    return _fixed_length(_shift_past_padding(tft.apply_vocabulary(
        categories, category_vocab,
        num_oov_buckets=features.NUM_OOV_BUCKETS)), features.CATEGORY_LENGTH)

  def timestamp_z(times):
    # As `tft.scale_to_z_score`, over the rows' times.
    centred = tf.cast(times, tf.float32) - time_mean
    deviation = tf.sqrt(time_variance)
    return tf.where(tf.not_equal(deviation, 0), centred / deviation, centred)

  def hour_of_day(times):
    return (times // _SECONDS_PER_HOUR) % 24

  def day_of_week(times):
    return (times // _SECONDS_PER_DAY + _EPOCH_DAY_OF_WEEK_SHIFT) % 7

  # A user counts once per row, as their frequency orders the vocabulary.
  user_vocab = tft.vocabulary(
      tf.repeat(user_ids, tf.math.unsorted_segment_sum(
          rows_per_positive, sequence_items.value_rowids(),
          sequence_items.nrows())),
      vocab_filename=features.USER_VOCAB)
  sequence_title_tokens = title_token_indices(sequence_titles.flat_values,
                                              features.TITLE_LENGTH)
  outputs = {
      features.USER_INDEX: _shift_past_padding(tft.apply_vocabulary(
          user_ids, user_vocab, num_oov_buckets=features.NUM_OOV_BUCKETS)),
      features.ITEM_INDEX: _apply_item_vocabulary(item_ids, item_vocab),
      features.HISTORY_ITEM_INDICES: history_dense,
      features.VIDEO_NEIGHBOUR_INDICES: video_neighbours,
      features.ITEM_NEIGHBOUR_INDICES: item_neighbours,
      features.HISTORY_LENGTH_FEATURE: tf.reduce_sum(
          tf.cast(history_dense != features.PADDING_INDEX, tf.int64), axis=1),
      features.TITLE_TOKEN_INDICES: title_token_indices(
          titles, features.TITLE_LENGTH),
      features.QUERY_TOKEN_INDICES: title_token_indices(
          queries, features.QUERY_LENGTH),
      # Densified by position (a serving request's "" entries are absent
      # from its sparse tensor), so query p stays with history item p.
      features.HISTORY_QUERY_TOKEN_INDICES: tf.reshape(title_token_indices(
          tf.reshape(_fixed_length(
              _newest(inputs[features.HISTORY_QUERIES],
                      features.HISTORY_LENGTH),
              features.HISTORY_LENGTH, default_value=""), [-1]),
          features.QUERY_LENGTH),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
      features.CATEGORY_INDICES: category_indices(
          inputs[features.ITEM_CATEGORIES]),
      features.HOUR_OF_DAY: hour_of_day(timestamps),
      features.DAY_OF_WEEK: day_of_week(timestamps),
      features.TIMESTAMP_Z: timestamp_z(timestamps),
      features.LABEL: tf.cast(_to_vector(inputs[features.LABEL]), tf.float32),
      features.SEQUENCE_ITEM_INDICES: tf.ragged.map_flat_values(
          _apply_item_vocabulary, sequence_items, item_vocab).to_sparse(),
      features.SEQUENCE_IS_VIDEO: tf.cast(
          tf.ragged.map_flat_values(is_video, sequence_items),
          tf.int64).to_sparse(),
      features.SEQUENCE_TITLE_TOKEN_INDICES: _per_position(
          sequence_title_tokens, sequence_items),
      features.SEQUENCE_CATEGORY_INDICES: _per_position(
          category_indices(_split_categories(
              sequence_categories.flat_values).to_sparse()), sequence_items),
      features.SEQUENCE_QUERY_TOKEN_INDICES: _per_position(
          title_token_indices(sequence_queries.flat_values,
                              features.QUERY_LENGTH), sequence_items),
      features.SEQUENCE_HOUR_OF_DAY: tf.ragged.map_flat_values(
          hour_of_day, sequence_times).to_sparse(),
      features.SEQUENCE_DAY_OF_WEEK: tf.ragged.map_flat_values(
          day_of_week, sequence_times).to_sparse(),
      features.SEQUENCE_TIMESTAMP_Z: tf.ragged.map_flat_values(
          timestamp_z, sequence_times).to_sparse(),
      features.NEGATIVE_ITEM_INDICES: tf.ragged.map_flat_values(
          _apply_item_vocabulary, negative_items, item_vocab).to_sparse(),
      features.NEGATIVE_TITLE_TOKEN_INDICES: _per_position(
          title_token_indices(negative_titles, features.TITLE_LENGTH),
          negative_items),
      features.NEGATIVE_CATEGORY_INDICES: _per_position(
          category_indices(_split_categories(negative_categories).to_sparse()),
          negative_items),
  }
  return outputs


def vocabulary_size(tft_output, vocab_name: str) -> int:
  """Number of index values a feature built on `vocab_name` can take.

  It counts the padding index, the vocabulary and the OOV buckets, so it is the
  `input_dim` an embedding over that feature needs.
  """
  return (tft_output.vocabulary_size_by_name(vocab_name) +
          features.NUM_OOV_BUCKETS + 1)
