"""The tf.Transform `preprocessing_fn` shared by every model family.

It builds the id vocabularies (with an OOV bucket), maps the per-user history
into fixed-length index sequences and derives timestamp context features. The
same graph is embedded in every exported model, so clients send raw features.
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


def preprocessing_fn(inputs):
  """Maps raw interaction features to model features.

  Args:
    inputs: raw features as described by the curated schema.

  Returns:
    The transformed features named in `data.features`.
  """
  user_ids = _to_vector(inputs[features.USER_ID])
  item_ids = _to_vector(inputs[features.ITEM_ID])
  timestamps = _to_vector(inputs[features.TIMESTAMP])
  history = inputs[features.HISTORY_ITEM_IDS]

  # Every history item was a train target earlier on, so the target ids alone
  # define the item vocabulary, and history and target share one index space.
  item_vocab = tft.vocabulary(item_ids, vocab_filename=features.ITEM_VOCAB)
  history_indices = tf.sparse.map_values(
      _apply_item_vocabulary, history, item_vocab)

  history_dense = _fixed_length(history_indices, features.HISTORY_LENGTH)
  # GMN's dual graph: the history split by item_type. Non-video rows add ""
  # (never an item id), so the vocabulary exists even without videos.
  video_vocab = tft.vocabulary(
      tf.where(tf.equal(_to_vector(inputs[features.ITEM_TYPE]), dual_graph.VIDEO),
               item_ids, ""), vocab_filename=features.VIDEO_VOCAB)
  history_is_video = tf.sparse.map_values(
      lambda ids: tft.apply_vocabulary(ids, video_vocab, default_value=-1) >= 0,
      history)
  video_neighbours, item_neighbours = dual_graph_tensors.split_history(
      history_indices, history_is_video, features.HISTORY_LENGTH)

  titles = _to_vector(inputs[features.ITEM_TITLE])
  queries = _to_vector(inputs[features.QUERY])
  # Query words join the title token vocabulary: SEMINAR embeds keywords and
  # item text in one table. Empty queries (no search log) add no token.
  title_token_vocab = tft.vocabulary(
      _title_tokens(tf.strings.join([titles, queries], separator=" ")),
      vocab_filename=features.TITLE_TOKEN_VOCAB)

  def title_token_indices(texts, length):
    return _fixed_length(_shift_past_padding(tft.apply_vocabulary(
        _title_tokens(texts), title_token_vocab,
        num_oov_buckets=features.NUM_OOV_BUCKETS)), length)

  outputs = {
      features.USER_INDEX: _shift_past_padding(
          tft.compute_and_apply_vocabulary(
              user_ids, num_oov_buckets=features.NUM_OOV_BUCKETS,
              vocab_filename=features.USER_VOCAB)),
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
          tf.reshape(_fixed_length(inputs[features.HISTORY_QUERIES],
                                   features.HISTORY_LENGTH, default_value=""),
                     [-1]), features.QUERY_LENGTH),
          [-1, features.HISTORY_LENGTH * features.QUERY_LENGTH]),
      features.CATEGORY_INDICES: _fixed_length(
          _shift_past_padding(tft.compute_and_apply_vocabulary(
              inputs[features.ITEM_CATEGORIES],
              num_oov_buckets=features.NUM_OOV_BUCKETS,
              vocab_filename=features.CATEGORY_VOCAB)),
          features.CATEGORY_LENGTH),
      features.HOUR_OF_DAY: (timestamps // _SECONDS_PER_HOUR) % 24,
      features.DAY_OF_WEEK:
          (timestamps // _SECONDS_PER_DAY + _EPOCH_DAY_OF_WEEK_SHIFT) % 7,
      features.TIMESTAMP_Z: tft.scale_to_z_score(tf.cast(timestamps, tf.float32)),
      features.LABEL: tf.cast(_to_vector(inputs[features.LABEL]), tf.float32),
  }
  return outputs


def vocabulary_size(tft_output, vocab_name: str) -> int:
  """Number of index values a feature built on `vocab_name` can take.

  It counts the padding index, the vocabulary and the OOV buckets, so it is the
  `input_dim` an embedding over that feature needs.
  """
  return (tft_output.vocabulary_size_by_name(vocab_name) +
          features.NUM_OOV_BUCKETS + 1)
