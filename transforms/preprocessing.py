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
from transforms import example_layout

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


def _apply_item_vocabulary(item_ids, deferred_vocab):
  return _shift_past_padding(
      tft.apply_vocabulary(item_ids, deferred_vocab,
                           num_oov_buckets=features.NUM_OOV_BUCKETS))


def _title_tokens(titles: tf.Tensor) -> tf.SparseTensor:
  return tf.strings.split(tf.strings.lower(titles)).to_sparse()


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


class _Examples:
  """A batch of raw examples, read as the per-interaction rows they stand for.

  Each example's own interaction (`[batch]` values), its newest
  `HISTORY_LENGTH` history items, its positives and its CTR negatives. A
  positive's values are its own history position's, or the example's own
  item's for the last one (`positives.values`); what is looked up is looked
  up on both parts.
  """

  def __init__(self, inputs):
    self.users = _to_vector(inputs[features.USER_ID])
    self.items = _to_vector(inputs[features.ITEM_ID])
    self.timestamps = _to_vector(inputs[features.TIMESTAMP])
    self.titles = _to_vector(inputs[features.ITEM_TITLE])
    self.queries = _to_vector(inputs[features.QUERY])
    self.categories = inputs[features.ITEM_CATEGORIES]
    self.history = example_layout.newest(inputs[features.HISTORY_ITEM_IDS],
                                         features.HISTORY_LENGTH)
    self.history_queries = inputs[features.HISTORY_QUERIES]
    self.positives = example_layout.Positives(example_layout.row_counts(
        inputs[features.HISTORY_TIMESTAMPS],
        tf.size(self.users, out_type=tf.int64)))
    (self.own_items, self.own_titles, self.own_queries, own_categories,
     own_times, own_types) = (self.positives.own(inputs[name]) for name in (
         features.HISTORY_ITEM_IDS, features.HISTORY_ITEM_TITLES,
         features.HISTORY_QUERIES, features.HISTORY_ITEM_CATEGORIES,
         features.HISTORY_TIMESTAMPS, features.HISTORY_ITEM_TYPES))
    self.own_categories = _split_categories(own_categories)
    self.sequence_items = self.positives.values(self.own_items, self.items)
    self.sequence_times = self.positives.values(own_times, self.timestamps)
    self.sequence_is_video_type = tf.equal(
        self.positives.values(own_types,
                              _to_vector(inputs[features.ITEM_TYPE])),
        dual_graph.VIDEO)
    negative_ids = inputs[features.NEGATIVE_ITEM_IDS]
    self.negatives = example_layout.Negatives(negative_ids, self.positives)
    self.negative_items = negative_ids.values
    self.negative_titles = inputs[features.NEGATIVE_ITEM_TITLES].values
    self.negative_categories = _split_categories(
        inputs[features.NEGATIVE_ITEM_CATEGORIES].values)

  def sequence_feature(self, own: tf.Tensor, current: tf.Tensor
                       ) -> tf.SparseTensor:
    """A `features.SEQUENCE_*` feature from its values at the own history
    positions and at the examples' own items."""
    return self.positives.layout.feature(self.positives.values(own, current))


def _user_features(examples: _Examples) -> dict[str, tf.Tensor]:
  """The user index; a user counts once per row, as their frequency orders
  the vocabulary."""
  user_vocab = tft.vocabulary(
      tf.repeat(examples.users, examples.positives.lengths
                * (1 + examples.negatives.per_positive)),
      vocab_filename=features.USER_VOCAB)
  return {features.USER_INDEX: _shift_past_padding(tft.apply_vocabulary(
      examples.users, user_vocab, num_oov_buckets=features.NUM_OOV_BUCKETS))}


def _item_features(examples: _Examples) -> dict[str, tf.Tensor]:
  """Item indices of rows, histories, positives and negatives (one index
  space, counted over every row's item), and the dual graph's features."""
  item_vocab = tft.vocabulary(
      tf.concat([examples.sequence_items, examples.negative_items], 0),
      vocab_filename=features.ITEM_VOCAB)
  history = examples.history
  history_items, item_indices, own_item_indices, negative_indices = (
      _each_part(_apply_item_vocabulary, item_vocab, [
          history.values, examples.items, examples.own_items,
          examples.negative_items]))
  history_indices = tf.SparseTensor(history.indices, history_items,
                                    history.dense_shape)
  history_dense = example_layout.fixed_length(history_indices,
                                              features.HISTORY_LENGTH)
  return {
      features.ITEM_INDEX: item_indices,
      features.HISTORY_ITEM_INDICES: history_dense,
      features.HISTORY_LENGTH_FEATURE: tf.reduce_sum(
          tf.cast(history_dense != features.PADDING_INDEX, tf.int64), axis=1),
      features.SEQUENCE_ITEM_INDICES: examples.sequence_feature(
          own_item_indices, item_indices),
      features.NEGATIVE_ITEM_INDICES: examples.negatives.layout.feature(
          negative_indices),
      **_dual_graph_features(examples, history_indices),
  }


def _is_in_vocabulary(values: tf.Tensor, vocab) -> tf.Tensor:
  return tft.apply_vocabulary(values, vocab, default_value=-1) >= 0


def _dual_graph_features(examples: _Examples,
                         history_indices: tf.SparseTensor
                         ) -> dict[str, tf.Tensor]:
  """GMN's dual graph: the history split by item_type, and which positives
  are videos.

  A row not of a video (a negative has its positive's type) adds "" to the
  video vocabulary, never an item id, so it exists even without videos.
  """
  is_video_type = examples.sequence_is_video_type
  video_vocab = tft.vocabulary(
      tf.concat([
          tf.where(is_video_type, examples.sequence_items, ""),
          tf.where(examples.negatives.of_positives(is_video_type),
                   examples.negative_items, "")], 0),
      vocab_filename=features.VIDEO_VOCAB)
  history = examples.history
  history_is_video, own_is_video, is_video = _each_part(
      _is_in_vocabulary, video_vocab,
      [history.values, examples.own_items, examples.items])
  video_neighbours, item_neighbours = dual_graph_tensors.split_history(
      history_indices, tf.SparseTensor(history.indices, history_is_video,
                                       history.dense_shape),
      features.HISTORY_LENGTH)
  return {
      features.VIDEO_NEIGHBOUR_INDICES: video_neighbours,
      features.ITEM_NEIGHBOUR_INDICES: item_neighbours,
      features.SEQUENCE_IS_VIDEO: examples.positives.layout.feature(tf.cast(
          examples.positives.values(own_is_video, is_video), tf.int64)),
  }


def _token_indices(texts: tf.Tensor, vocab) -> tf.Tensor:
  """`[n, TITLE_LENGTH]` indices of each text's first tokens."""
  return example_layout.fixed_length(
      _shift_past_padding(tft.apply_vocabulary(
          _title_tokens(texts), vocab,
          num_oov_buckets=features.NUM_OOV_BUCKETS)),
      features.TITLE_LENGTH)


def _query_part(tokens: tf.Tensor) -> tf.Tensor:
  """A query's tokens: the first `QUERY_LENGTH` of its `_token_indices`."""
  return tokens[:, :features.QUERY_LENGTH]


def _text_features(examples: _Examples) -> dict[str, tf.Tensor]:
  """Title and query token indices.

  Query words join the title token vocabulary: SEMINAR embeds keywords and
  item text in one table. A row counts its title's tokens and its query's
  (a negative has its positive's); empty queries add none.
  """
  title_token_vocab = tft.vocabulary(
      _title_tokens(tf.concat([
          examples.own_titles, examples.titles, examples.negative_titles,
          examples.own_queries, examples.queries,
          examples.negatives.of_positives(examples.positives.values(
              examples.own_queries, examples.queries))], 0)),
      vocab_filename=features.TITLE_TOKEN_VOCAB)
  history_queries = tf.reshape(example_layout.fixed_length(
      example_layout.newest(examples.history_queries,
                            features.HISTORY_LENGTH),
      features.HISTORY_LENGTH, default_value=""), [-1])
  (title_tokens, query_tokens, history_query_tokens, own_title_tokens,
   own_query_tokens, negative_title_tokens) = _each_part(
       _token_indices, title_token_vocab,
       [examples.titles, examples.queries, history_queries,
        examples.own_titles, examples.own_queries, examples.negative_titles])
  query_tokens = _query_part(query_tokens)
  return {
      features.TITLE_TOKEN_INDICES: title_tokens,
      features.QUERY_TOKEN_INDICES: query_tokens,
      # Densified by position (a serving request's "" entries are absent
      # from its sparse tensor), so query p stays with history item p.
      features.HISTORY_QUERY_TOKEN_INDICES: tf.reshape(
          _query_part(history_query_tokens),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
      features.SEQUENCE_TITLE_TOKEN_INDICES: examples.sequence_feature(
          own_title_tokens, title_tokens),
      features.SEQUENCE_QUERY_TOKEN_INDICES: examples.sequence_feature(
          _query_part(own_query_tokens), query_tokens),
      features.NEGATIVE_TITLE_TOKEN_INDICES: examples.negatives.layout.feature(
          negative_title_tokens),
  }


def _category_features(examples: _Examples) -> dict[str, tf.Tensor]:
  """Category indices of rows, positives and negatives."""
  item_categories = examples.categories
  category_vocab = tft.vocabulary(
      tf.concat([examples.own_categories.values,
                 example_layout.take(item_categories.values,
                                     item_categories.values != ""),
                 examples.negative_categories.values], 0),
      vocab_filename=features.CATEGORY_VOCAB)
  category_lists = [item_categories, examples.own_categories,
                    examples.negative_categories]
  category_indices, own_category_indices, negative_category_indices = tf.split(
      example_layout.fixed_length(
          _shift_past_padding(tft.apply_vocabulary(
              tf.sparse.concat(0, category_lists, expand_nonconcat_dims=True),
              category_vocab, num_oov_buckets=features.NUM_OOV_BUCKETS)),
          features.CATEGORY_LENGTH),
      [categories.dense_shape[0] for categories in category_lists])
  return {
      features.CATEGORY_INDICES: category_indices,
      features.SEQUENCE_CATEGORY_INDICES: examples.sequence_feature(
          own_category_indices, category_indices),
      features.NEGATIVE_CATEGORY_INDICES: examples.negatives.layout.feature(
          negative_category_indices),
  }


def _hour_of_day(times: tf.Tensor) -> tf.Tensor:
  return (times // _SECONDS_PER_HOUR) % 24


def _day_of_week(times: tf.Tensor) -> tf.Tensor:
  return (times // _SECONDS_PER_DAY + _EPOCH_DAY_OF_WEEK_SHIFT) % 7


def _z_score(times: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor
             ) -> tf.Tensor:
  """As `tft.scale_to_z_score`, with the rows' mean and variance."""
  centred = tf.cast(times, tf.float32) - mean
  deviation = tf.sqrt(variance)
  return tf.where(tf.not_equal(deviation, 0), centred / deviation, centred)


def _time_features(examples: _Examples) -> dict[str, tf.Tensor]:
  """Hour of day, day of week and the time scaled over the rows, of each
  row and each positive."""
  sequence_times = examples.sequence_times
  row_times = tf.cast(tf.concat([
      sequence_times, examples.negatives.of_positives(sequence_times)], 0),
                      tf.float32)
  mean, variance = tft.mean(row_times), tft.var(row_times)
  timestamps = examples.timestamps
  sequence_feature = examples.positives.layout.feature
  return {
      features.HOUR_OF_DAY: _hour_of_day(timestamps),
      features.DAY_OF_WEEK: _day_of_week(timestamps),
      features.TIMESTAMP_Z: _z_score(timestamps, mean, variance),
      features.SEQUENCE_HOUR_OF_DAY: sequence_feature(
          _hour_of_day(sequence_times)),
      features.SEQUENCE_DAY_OF_WEEK: sequence_feature(
          _day_of_week(sequence_times)),
      features.SEQUENCE_TIMESTAMP_Z: sequence_feature(
          _z_score(sequence_times, mean, variance)),
  }


def preprocessing_fn(inputs):
  """Maps raw interaction features to model features.

  Every example gets the per-interaction features of its own item (a
  serving request and an eval row are one interaction each). A train
  example is one per user and also gets the features of each of its
  positives (`features.SEQUENCE_*`, `features.NEGATIVE_*`), from which the
  Trainer expands its rows; the analyzers count those rows, each positive
  and each CTR negative once, so the vocabularies and the time scaling are
  those of the per-interaction rows.

  Each vocabulary is looked up once, on everything it indexes: every lookup
  is a table in the graph, and the graph is traced and loaded by every
  Transform worker and every served request.

  Args:
    inputs: raw features as described by the curated schema.

  Returns:
    The transformed features named in `data.features`.
  """
  examples = _Examples(inputs)
  return {
      **_user_features(examples),
      **_item_features(examples),
      **_text_features(examples),
      **_category_features(examples),
      **_time_features(examples),
      features.LABEL: tf.cast(_to_vector(inputs[features.LABEL]), tf.float32),
  }


def vocabulary_size(tft_output, vocab_name: str) -> int:
  """Number of index values a feature built on `vocab_name` can take.

  It counts the padding index, the vocabulary and the OOV buckets, so it is the
  `input_dim` an embedding over that feature needs.
  """
  return (tft_output.vocabulary_size_by_name(vocab_name) +
          features.NUM_OOV_BUCKETS + 1)
