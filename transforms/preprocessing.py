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


def _take(values: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
  """The `values` where the `[n]` bool `keep` is true: `tf.boolean_mask`
  for a leading dimension, in a few ops where it takes a dozen; the graph is
  traced by every Transform run and loaded by every served request."""
  return tf.gather(values, tf.where(keep)[:, 0])


def _fixed_length(sparse_indices: tf.SparseTensor, length: int,
                  default_value=features.PADDING_INDEX) -> tf.Tensor:
  """Densifies a sparse `[batch, None]` tensor into `[batch, length]`.

  Values past `length` are dropped, missing positions are `default_value`.
  """
  keep = sparse_indices.indices[:, 1] < length
  dense = tf.sparse.to_dense(
      tf.SparseTensor(_take(sparse_indices.indices, keep),
                      _take(sparse_indices.values, keep),
                      tf.stack([sparse_indices.dense_shape[0],
                                tf.constant(length, tf.int64)])),
      default_value=default_value)
  return tf.reshape(dense, [-1, length])


def _apply_item_vocabulary(item_ids, deferred_vocab):
  return _shift_past_padding(
      tft.apply_vocabulary(item_ids, deferred_vocab,
                           num_oov_buckets=features.NUM_OOV_BUCKETS))


def _title_tokens(titles: tf.Tensor) -> tf.SparseTensor:
  return tf.strings.split(tf.strings.lower(titles)).to_sparse()


def _row_counts(sparse: tf.SparseTensor, rows: tf.Tensor) -> tf.Tensor:
  """`[rows]` number of values in each row of a `[rows, None]` feature."""
  return tf.math.unsorted_segment_sum(
      tf.ones_like(sparse.indices[:, 0]), sparse.indices[:, 0], rows)


def _newest(values: tf.SparseTensor, length: int) -> tf.SparseTensor:
  """The last `length` values of each row of a `[batch, None]` feature, left
  aligned: a train example's history holds every earlier positive, a row's
  history its newest `length`."""
  rows, columns = values.indices[:, 0], values.indices[:, 1]
  dropped = tf.maximum(
      tf.gather(_row_counts(values, values.dense_shape[0]), rows) - length, 0)
  keep = columns >= dropped
  return tf.SparseTensor(
      indices=_take(tf.stack([rows, columns - dropped], axis=1), keep),
      values=_take(values.values, keep),
      dense_shape=tf.stack([values.dense_shape[0],
                            tf.minimum(values.dense_shape[1], length)]))


class _Layout:
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


class _Positives:
  """Where each example's positives sit, flattened over the batch.

  An example's positives are its history positions that carry their own
  features (`own_lengths[b]` of them: all of a train example's, none of an
  eval row's), then its own item. Flat position `starts[b] + p` is position
  `p` of example `b`.
  """

  def __init__(self, own_lengths: tf.Tensor):
    batch = tf.size(own_lengths, out_type=tf.int64)
    self.own_lengths = own_lengths
    self.lengths = own_lengths + 1
    self.starts = tf.cumsum(self.lengths, exclusive=True)
    rows = tf.repeat(tf.range(batch), self.lengths)
    positions = tf.range(tf.reduce_sum(self.lengths)) - tf.gather(self.starts,
                                                                  rows)
    self.layout = _Layout(rows, positions, batch, tf.reduce_max(self.lengths))
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
    return _take(history.values, columns < tf.gather(self.own_lengths, rows))

  def values(self, own: tf.Tensor, current: tf.Tensor) -> tf.Tensor:
    """`[P, ...]` one feature at every flat position from its `own` values
    (`own()`, or values computed from them) and each example's `current`."""
    return tf.gather(tf.concat([own, current], 0), self._sources)


def _each_part(lookup, vocabulary, parts: list[tf.Tensor]) -> list[tf.Tensor]:
  """`lookup(values, vocabulary)` of each of `parts` (`[n_i]` each), done
  once on all of them."""
  return tf.split(lookup(tf.concat(parts, 0), vocabulary),
                  [tf.size(part) for part in parts])


def _split_categories(joined: tf.Tensor) -> tf.SparseTensor:
  """`[P]` joined category strings -> `[P, None]` categories."""
  categories = tf.strings.split(joined, features.CATEGORY_SEPARATOR).to_sparse()
  # "" (no category) splits into one empty string; joined lists hold none.
  return tf.sparse.retain(categories, categories.values != "")


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

  batch = tf.size(user_ids, out_type=tf.int64)
  positives = _Positives(_row_counts(inputs[features.HISTORY_TIMESTAMPS],
                                     batch))
  def own(history_name):
    return positives.own(inputs[history_name])
  # A positive's values are its own history position's, or the example's
  # item's for the last one; what is looked up is looked up on both parts.
  own_items = own(features.HISTORY_ITEM_IDS)
  own_titles = own(features.HISTORY_ITEM_TITLES)
  own_queries = own(features.HISTORY_QUERIES)
  own_categories = _split_categories(own(features.HISTORY_ITEM_CATEGORIES))
  sequence_items = positives.values(own_items, item_ids)
  sequence_times = positives.values(own(features.HISTORY_TIMESTAMPS),
                                    timestamps)
  sequence_is_video_type = tf.equal(
      positives.values(own(features.HISTORY_ITEM_TYPES), item_types),
      dual_graph.VIDEO)
  # Each positive's CTR negatives, the same number for every positive of an
  # example, in position order; each is a row with its positive's context.
  negatives = inputs[features.NEGATIVE_ITEM_IDS]
  negative_rows = negatives.indices[:, 0]
  negatives_per_positive = _row_counts(negatives, batch) // positives.lengths
  negative_positives = (
      tf.gather(positives.starts, negative_rows) + negatives.indices[:, 1]
      // tf.gather(tf.maximum(negatives_per_positive, 1), negative_rows))
  def per_negative(positive_values):
    return tf.gather(positive_values, negative_positives)
  negative_layout = _Layout(negative_rows, negatives.indices[:, 1],
                            negatives.dense_shape[0], negatives.dense_shape[1])
  negative_items = negatives.values
  negative_titles = inputs[features.NEGATIVE_ITEM_TITLES].values
  negative_categories = _split_categories(
      inputs[features.NEGATIVE_ITEM_CATEGORIES].values)
  item_categories = inputs[features.ITEM_CATEGORIES]

  # Every row's item, positives' and negatives': history and target share
  # this index space.
  item_vocab = tft.vocabulary(
      tf.concat([sequence_items, negative_items], 0),
      vocab_filename=features.ITEM_VOCAB)
  # GMN's dual graph: the history split by item_type. A row not of a video
  # (a negative has its positive's type) adds "", never an item id, so the
  # vocabulary exists even without videos.
  video_vocab = tft.vocabulary(
      tf.concat([
          tf.where(sequence_is_video_type, sequence_items, ""),
          tf.where(per_negative(sequence_is_video_type), negative_items,
                   "")], 0),
      vocab_filename=features.VIDEO_VOCAB)
  # Query words join the title token vocabulary: SEMINAR embeds keywords and
  # item text in one table. A row counts its title's tokens and its query's
  # (a negative has its positive's); empty queries add none.
  title_token_vocab = tft.vocabulary(
      _title_tokens(tf.concat([
          own_titles, titles, negative_titles, own_queries, queries,
          per_negative(positives.values(own_queries, queries))], 0)),
      vocab_filename=features.TITLE_TOKEN_VOCAB)
  category_vocab = tft.vocabulary(
      tf.concat([own_categories.values,
                 _take(item_categories.values, item_categories.values != ""),
                 negative_categories.values], 0),
      vocab_filename=features.CATEGORY_VOCAB)
  row_times = tf.cast(tf.concat([sequence_times,
                                 per_negative(sequence_times)], 0), tf.float32)
  time_mean, time_variance = tft.mean(row_times), tft.var(row_times)
  # A user counts once per row, as their frequency orders the vocabulary.
  user_vocab = tft.vocabulary(
      tf.repeat(user_ids, positives.lengths * (1 + negatives_per_positive)),
      vocab_filename=features.USER_VOCAB)

  # Each vocabulary is looked up once, on everything it indexes: every
  # lookup is a table in the graph, and the graph is traced and loaded by
  # every Transform worker and every served request.
  history_items, item_indices, own_item_indices, negative_indices = (
      _each_part(_apply_item_vocabulary, item_vocab, [
          history.values, item_ids, own_items, negative_items]))
  history_indices = tf.SparseTensor(history.indices, history_items,
                                    history.dense_shape)
  history_dense = _fixed_length(history_indices, features.HISTORY_LENGTH)
  history_is_video, own_is_video, is_video = _each_part(
      lambda ids, vocab: tft.apply_vocabulary(ids, vocab, default_value=-1)
      >= 0, video_vocab, [history.values, own_items, item_ids])
  video_neighbours, item_neighbours = dual_graph_tensors.split_history(
      history_indices, tf.SparseTensor(history.indices, history_is_video,
                                       history.dense_shape),
      features.HISTORY_LENGTH)

  history_queries = tf.reshape(_fixed_length(
      _newest(inputs[features.HISTORY_QUERIES], features.HISTORY_LENGTH),
      features.HISTORY_LENGTH, default_value=""), [-1])
  # Texts index at most TITLE_LENGTH tokens, queries the first QUERY_LENGTH.
  (title_tokens, query_tokens, history_query_tokens, own_title_tokens,
   own_query_tokens, negative_title_tokens) = _each_part(
       lambda texts, vocab: _fixed_length(_shift_past_padding(
           tft.apply_vocabulary(_title_tokens(texts), vocab,
                                num_oov_buckets=features.NUM_OOV_BUCKETS)),
                                          features.TITLE_LENGTH),
       title_token_vocab,
       [titles, queries, history_queries, own_titles, own_queries,
        negative_titles])
  def query_part(tokens):
    return tokens[:, :features.QUERY_LENGTH]

  category_lists = [item_categories, own_categories, negative_categories]
  category_indices, own_category_indices, negative_category_indices = tf.split(
      _fixed_length(_shift_past_padding(tft.apply_vocabulary(
          tf.sparse.concat(0, category_lists, expand_nonconcat_dims=True),
          category_vocab, num_oov_buckets=features.NUM_OOV_BUCKETS)),
                    features.CATEGORY_LENGTH),
      [categories.dense_shape[0] for categories in category_lists])

  def timestamp_z(times):
    # As `tft.scale_to_z_score`, over the rows' times.
    centred = tf.cast(times, tf.float32) - time_mean
    deviation = tf.sqrt(time_variance)
    return tf.where(tf.not_equal(deviation, 0), centred / deviation, centred)

  def hour_of_day(times):
    return (times // _SECONDS_PER_HOUR) % 24

  def day_of_week(times):
    return (times // _SECONDS_PER_DAY + _EPOCH_DAY_OF_WEEK_SHIFT) % 7

  sequence_feature = positives.layout.feature
  outputs = {
      features.USER_INDEX: _shift_past_padding(tft.apply_vocabulary(
          user_ids, user_vocab, num_oov_buckets=features.NUM_OOV_BUCKETS)),
      features.ITEM_INDEX: item_indices,
      features.HISTORY_ITEM_INDICES: history_dense,
      features.VIDEO_NEIGHBOUR_INDICES: video_neighbours,
      features.ITEM_NEIGHBOUR_INDICES: item_neighbours,
      features.HISTORY_LENGTH_FEATURE: tf.reduce_sum(
          tf.cast(history_dense != features.PADDING_INDEX, tf.int64), axis=1),
      features.TITLE_TOKEN_INDICES: title_tokens,
      features.QUERY_TOKEN_INDICES: query_part(query_tokens),
      # Densified by position (a serving request's "" entries are absent
      # from its sparse tensor), so query p stays with history item p.
      features.HISTORY_QUERY_TOKEN_INDICES: tf.reshape(
          query_part(history_query_tokens),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
      features.CATEGORY_INDICES: category_indices,
      features.HOUR_OF_DAY: hour_of_day(timestamps),
      features.DAY_OF_WEEK: day_of_week(timestamps),
      features.TIMESTAMP_Z: timestamp_z(timestamps),
      features.LABEL: tf.cast(_to_vector(inputs[features.LABEL]), tf.float32),
      features.SEQUENCE_ITEM_INDICES: sequence_feature(positives.values(
          own_item_indices, item_indices)),
      features.SEQUENCE_IS_VIDEO: sequence_feature(tf.cast(
          positives.values(own_is_video, is_video), tf.int64)),
      features.SEQUENCE_TITLE_TOKEN_INDICES: sequence_feature(
          positives.values(own_title_tokens, title_tokens)),
      features.SEQUENCE_CATEGORY_INDICES: sequence_feature(
          positives.values(own_category_indices, category_indices)),
      features.SEQUENCE_QUERY_TOKEN_INDICES: sequence_feature(query_part(
          positives.values(own_query_tokens, query_tokens))),
      features.SEQUENCE_HOUR_OF_DAY: sequence_feature(
          hour_of_day(sequence_times)),
      features.SEQUENCE_DAY_OF_WEEK: sequence_feature(
          day_of_week(sequence_times)),
      features.SEQUENCE_TIMESTAMP_Z: sequence_feature(
          timestamp_z(sequence_times)),
      features.NEGATIVE_ITEM_INDICES: negative_layout.feature(
          negative_indices),
      features.NEGATIVE_TITLE_TOKEN_INDICES: negative_layout.feature(
          negative_title_tokens),
      features.NEGATIVE_CATEGORY_INDICES: negative_layout.feature(
          negative_category_indices),
  }
  return outputs


def vocabulary_size(tft_output, vocab_name: str) -> int:
  """Number of index values a feature built on `vocab_name` can take.

  It counts the padding index, the vocabulary and the OOV buckets, so it is the
  `input_dim` an embedding over that feature needs.
  """
  return (tft_output.vocabulary_size_by_name(vocab_name) +
          features.NUM_OOV_BUCKETS + 1)
