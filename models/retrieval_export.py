"""Serving signatures of a retrieval model, with the Transform graph inside.

Every signature takes raw features, so clients never re-implement
preprocessing:

- `query_embedding`: user_id, history_item_ids, timestamp -> embedding,
  `[batch, dim]`, or `[batch, K, dim]` for a multi-vector query tower.
- `candidate_embedding`: item_id, item_title, item_categories -> embedding.
- `retrieve_top10` / `retrieve_top100` (and `serving_default` = top 10):
  brute-force scoring of the whole catalogue, history items excluded.
- `evaluate`: serialized tf.Examples -> the 0-based rank of each example's
  target among all catalogue items, for the model and for a most-popular
  baseline scored the same way. TFMA aggregates these into Recall@k/NDCG@k.
  The protocol is `offline_eval.protocols.full_ranking`'s: every train item
  of the user (`SEEN_ITEM_IDS`, not only the capped history) is excluded
  except the target, and ties count against the target.

A multi-vector (multi-interest) query tower returns K unit vectors per user;
an item then scores the max over the K dot products (MIND, ComiRec), in both
`retrieve_top*` and `evaluate`.

`CatalogueServingModule` serves these signatures for any model that scores
the whole catalogue; `RetrievalServingModule` is its two-tower form, and
`models.item_item_export` its form for item-item weights (EASE^R, item-kNN).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from data import features
from models import serving_names
from models import train_inputs
from models.layers import mixture_of_representation
from transforms import preprocessing

_UNAVAILABLE_SCORE = -1e9


@dataclasses.dataclass(frozen=True)
class ItemCatalogue:
  """Every item of the item vocabulary, indexed by transformed item index.

  Attributes:
    item_ids: `[num_indices]` raw ids; "" at the padding and OOV indices.
    candidate_features: transformed candidate-tower inputs, one row per index.
    train_counts: `[num_indices]` positives per item in the train split.
  """
  item_ids: np.ndarray
  candidate_features: Mapping[str, np.ndarray]
  train_counts: np.ndarray

  @property
  def sampling_probability(self) -> np.ndarray:
    return self.train_counts / max(self.train_counts.sum(), 1)


def train_split_catalogue(fn_args, tft_output) -> ItemCatalogue:
  """`build_catalogue` over a Trainer's train split and item vocabulary.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
  """
  return build_catalogue(
      train_inputs.input_dataset(fn_args, fn_args.train_files, tft_output,
                                 4096, shuffle=False),
      [token.decode() for token in
       tft_output.vocabulary_by_name(features.ITEM_VOCAB)],
      preprocessing.vocabulary_size(tft_output, features.ITEM_VOCAB))


def build_catalogue(train_dataset: tf.data.Dataset, item_vocabulary: list[str],
                    num_indices: int) -> ItemCatalogue:
  """Collects candidate features and train counts from the train split.

  Args:
    train_dataset: batches of transformed train features.
    item_vocabulary: the item vocabulary, in index order (index = position+1).
    num_indices: number of item indices, padding and OOV included.

  Returns:
    The catalogue of all vocabulary items.
  """
  counts = np.zeros(num_indices, np.float64)
  candidate_features = {
      features.ITEM_INDEX: np.arange(num_indices, dtype=np.int64),
      features.TITLE_TOKEN_INDICES: np.zeros(
          (num_indices, features.TITLE_LENGTH), np.int64),
      features.CATEGORY_INDICES: np.zeros(
          (num_indices, features.CATEGORY_LENGTH), np.int64),
  }
  for batch in train_dataset:
    item_index = batch[features.ITEM_INDEX].numpy()
    np.add.at(counts, item_index, 1)
    for name in (features.TITLE_TOKEN_INDICES, features.CATEGORY_INDICES):
      candidate_features[name][item_index] = batch[name].numpy()
  item_ids = np.array([""] + list(item_vocabulary) +
                      [""] * (num_indices - len(item_vocabulary) - 1), dtype=object)
  return ItemCatalogue(item_ids=item_ids, candidate_features=candidate_features,
                       train_counts=counts)


def _dense_to_raw(spec, tensor: tf.Tensor):
  """Converts a client's dense tensor to the raw feature format of `spec`."""
  if isinstance(spec, tf.io.VarLenFeature):
    return tf.sparse.from_dense(tensor)
  return tf.reshape(tensor, [-1, 1])


def _empty_raw_feature(spec, batch_size: tf.Tensor):
  if isinstance(spec, tf.io.VarLenFeature):
    return tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype),
                           tf.stack([tf.cast(batch_size, tf.int64), 0]))
  return tf.zeros([batch_size, 1], spec.dtype)


def complete_raw_features(raw: Mapping[str, tf.Tensor],
                          raw_feature_spec: Mapping[str, object]
                          ) -> dict[str, tf.Tensor]:
  """A request's dense raw features in the Transform graph's input format.

  Every feature of `raw_feature_spec` the request does not send is empty, so
  that clients send only what they have, and every export accepts the same
  inputs.

  Args:
    raw: dense `[batch, ...]` tensors by raw feature name.
    raw_feature_spec: the Transform's raw feature spec.
  """
  batch_size = tf.shape(next(iter(raw.values())))[0]
  return {name: (_dense_to_raw(spec, raw[name]) if name in raw
                 else _empty_raw_feature(spec, batch_size))
          for name, spec in raw_feature_spec.items()}


def score_items(query: tf.Tensor, item_embeddings: tf.Tensor) -> tf.Tensor:
  """Scores every item for every user.

  Args:
    query: `[batch, dim]` query embeddings, or `[batch, K, dim]` for users
      embedded as K vectors.
    item_embeddings: `[items, dim]`.

  Returns:
    `[batch, items]` dot products; for K vectors the max over them.
  """
  if query.shape.rank == 3:
    return mixture_of_representation.max_merge_scores(query, item_embeddings)
  return tf.matmul(query, item_embeddings, transpose_b=True)


# Scores (and masks) a request holds at once: `[batch, items]` blocks of at
# most this many cells, 16 MiB of float32, whatever the catalogue's size.
CELLS_PER_CHUNK = 1 << 22

# `(start, size) -> [batch, size]` float32 scores of item indices
# `start...start + size - 1`; every call for a range must give the same bits.
ChunkScorer = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _fold_chunks(num_items: tf.Tensor, items_per_chunk: tf.Tensor,
                 step: Callable, initial):
  """Folds `step(start, size, state) -> state` over the catalogue in order.

  One chunk at a time (`parallel_iterations=1`): running them side by side
  would hold several chunks' scores and undo the bound.
  """
  def body(start, state):
    size = tf.minimum(items_per_chunk, num_items - start)
    return start + size, step(start, size, state)

  _, state = tf.while_loop(lambda start, _: start < num_items, body,
                           (tf.zeros([], tf.int64), initial),
                           parallel_iterations=1)
  return state


def _available_in_chunk(servable: tf.Tensor, seen_pairs: tf.Tensor,
                        start: tf.Tensor, size: tf.Tensor,
                        batch_size: tf.Tensor) -> tf.Tensor:
  """`[batch, size]` mask of chunk `start...`: servable and not seen.

  Args:
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` (row, item index) pairs each row has seen.
    start: the chunk's first item index.
    size: its number of items.
    batch_size: rows of the request.
  """
  items = seen_pairs[:, 1]
  in_chunk = tf.logical_and(items >= start, items < start + size)
  pairs = tf.boolean_mask(seen_pairs, in_chunk) - tf.stack(
      [tf.zeros([], tf.int64), start])
  seen = tf.tensor_scatter_nd_update(
      tf.zeros(tf.stack([tf.cast(batch_size, tf.int64), size]), tf.bool),
      pairs, tf.ones(tf.shape(pairs)[:1], tf.bool))
  return tf.logical_and(servable[start:start + size][tf.newaxis, :],
                        tf.logical_not(seen))


def _target_scores(scorers: Sequence[ChunkScorer], num_items: tf.Tensor,
                   items_per_chunk: tf.Tensor,
                   target: tf.Tensor) -> list[tf.Tensor]:
  """`[batch]` score of each row's target, by each of `scorers`.

  Taken from the very chunk scores the target's competitors are compared
  with, not from a separate product whose rounding might differ (and turn a
  tie into a win or a loss). Only the chunks holding some target are scored.
  """
  chunks = tf.unique(target // items_per_chunk).y

  def body(i, scores):
    start = chunks[i] * items_per_chunk
    size = tf.minimum(items_per_chunk, num_items - start)
    in_chunk = tf.equal(target // items_per_chunk, chunks[i])
    offset = tf.where(in_chunk, target - start, tf.zeros_like(target))
    return i + 1, [tf.where(in_chunk, tf.gather(score_chunk(start, size),
                                                offset, batch_dims=1), score)
                   for score_chunk, score in zip(scorers, scores)]

  _, scores = tf.while_loop(
      lambda i, _: i < tf.size(chunks), body,
      (tf.zeros([], tf.int32),
       [tf.zeros(tf.shape(target), tf.float32)] * len(scorers)),
      parallel_iterations=1)
  return scores


def chunked_target_ranks(scorers: Sequence[ChunkScorer], servable: tf.Tensor,
                         seen_pairs: tf.Tensor, target: tf.Tensor,
                         items_per_chunk: tf.Tensor) -> list[tf.Tensor]:
  """0-based rank of each row's target among the available items, by scorer.

  The protocol of `offline_eval.protocols.full_ranking`: the competitors are
  the servable items the row has not seen, the target aside; ties count
  against the target (a constant scorer ranks it last), and a target that is
  not servable gets the worst rank. The catalogue is scored a chunk at a
  time, so that a request never holds `[batch, num_items]`; the ranks are
  those of scoring it at once from the same scores. A matmul's last bit may
  depend on its shape, so against one chunk an item within an ulp of the
  target may fall on the other side.

  Args:
    scorers: the item scorers to rank the target by.
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` int64 (row, item index) pairs the rows have seen;
      a seen target still competes for its own rank.
    target: `[batch]` int64 item index of each row's target.
    items_per_chunk: items scored at once.

  Returns:
    `[batch]` float32 ranks, one tensor per scorer.
  """
  num_items = tf.shape(servable, out_type=tf.int64)[0]
  items_per_chunk = tf.cast(items_per_chunk, tf.int64)
  batch_size = tf.shape(target)[0]
  target_scores = _target_scores(scorers, num_items, items_per_chunk,
                                 target)

  def count(mask):
    return tf.reduce_sum(tf.cast(mask, tf.int64), axis=1)

  def step(start, size, state):
    ahead, competing = state
    competitors = tf.logical_and(
        _available_in_chunk(servable, seen_pairs, start, size, batch_size),
        tf.not_equal(tf.range(start, start + size)[tf.newaxis, :],
                     target[:, tf.newaxis]))
    ahead = [total + count(tf.logical_and(
        competitors, score_chunk(start, size) >= target_score[:, tf.newaxis]))
             for total, score_chunk, target_score in zip(
                 ahead, scorers, target_scores)]
    return ahead, competing + count(competitors)

  ahead, competing = _fold_chunks(
      num_items, items_per_chunk, step,
      ([tf.zeros([batch_size], tf.int64)] * len(target_scores),
       tf.zeros([batch_size], tf.int64)))
  target_servable = tf.gather(servable, target)
  return [tf.cast(tf.where(target_servable, total, competing), tf.float32)
          for total in ahead]


def chunked_top_k(score_chunk: ChunkScorer, servable: tf.Tensor,
                  seen_pairs: tf.Tensor, batch_size: tf.Tensor, k: int,
                  items_per_chunk: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """The `k` best available item indices per row, a chunk at a time.

  Each chunk's top `k` merges into the running top `k`. Unavailable items
  score `_UNAVAILABLE_SCORE` and come last; ties go to the lower item index,
  as a `tf.math.top_k` over the whole catalogue would order them.

  Args:
    score_chunk: the item scorer.
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` int64 (row, item index) pairs to leave out.
    batch_size: rows of the request.
    k: items to return; at most the catalogue's size are.
    items_per_chunk: items scored at once.

  Returns:
    `[batch, min(k, num_items)]` scores, best first, and their item indices.
  """
  num_items = tf.shape(servable, out_type=tf.int64)[0]

  def step(start, size, state):
    best_scores, best_indices = state
    scores = tf.where(
        _available_in_chunk(servable, seen_pairs, start, size, batch_size),
        score_chunk(start, size), _UNAVAILABLE_SCORE)
    chunk_scores, chunk_positions = tf.math.top_k(
        scores, k=tf.cast(tf.minimum(size, k), tf.int32))
    # The running best come first, so among equal scores the lower (earlier)
    # item index wins.
    merged_scores = tf.concat([best_scores, chunk_scores], axis=1)
    merged_indices = tf.concat(
        [best_indices, start + tf.cast(chunk_positions, tf.int64)], axis=1)
    best_scores, positions = tf.math.top_k(merged_scores, k=k)
    return best_scores, tf.gather(merged_indices, positions, batch_dims=1)

  # Placeholders below every real score: any item displaces them.
  best_scores, best_indices = _fold_chunks(
      num_items, tf.cast(items_per_chunk, tf.int64), step,
      (tf.fill(tf.stack([batch_size, k]), tf.constant(-np.inf, tf.float32)),
       tf.zeros(tf.stack([batch_size, k]), tf.int64)))
  kept = tf.minimum(num_items, k)
  return best_scores[:, :kept], best_indices[:, :kept]


class CatalogueServingModule(tf.Module):
  """The signatures of every model that scores the whole catalogue.

  Subclasses say what a query and a candidate are (`query_vector`,
  `candidate_vector`) and how a range of the catalogue is scored
  (`catalogue_query`, `score_chunk`); this class serves them under the
  `models.serving_names` signatures, with the same raw inputs, history
  exclusion and `evaluate` ranks for every family. `retrieve_top*` and
  `evaluate` score the catalogue in chunks of `cells_per_chunk` scores, so a
  request's memory does not grow with the catalogue. The catalogue's arrays
  are variables: they go to the checkpoint, not into the graph.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    catalogue: the items to retrieve from.
    cells_per_chunk: scores of `[batch, items]` computed at once.
  """

  def __init__(self, tft_layer, raw_feature_spec, catalogue: ItemCatalogue,
               cells_per_chunk: int = CELLS_PER_CHUNK):
    super().__init__()
    self.tft_layer = tft_layer
    self._raw_feature_spec = dict(raw_feature_spec)
    self._cells_per_chunk = cells_per_chunk
    self.item_ids = tf.Variable(catalogue.item_ids.astype(str),
                                trainable=False, name="item_ids")
    self.popularity = tf.Variable(catalogue.train_counts, dtype=tf.float32,
                                  trainable=False, name="popularity")
    # Padding and OOV indices hold no real item.
    self.servable_items = tf.Variable(catalogue.train_counts > 0,
                                      trainable=False, name="servable_items")
    real = catalogue.item_ids.astype(str) != ""
    self._index_of_item = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(catalogue.item_ids[real].astype(str)),
            tf.constant(np.flatnonzero(real), tf.int64)),
        default_value=-1)

  def query_vector(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`query_embedding`'s output for transformed query features."""
    raise NotImplementedError

  def candidate_vector(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`candidate_embedding`'s output for transformed candidate features."""
    raise NotImplementedError

  def catalogue_query(self, transformed: Mapping[str, tf.Tensor]):
    """What `score_chunk` scores the catalogue with, computed once a request."""
    raise NotImplementedError

  def score_chunk(self, query, start: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """`[batch, size]` scores of item indices `start...start + size - 1`."""
    raise NotImplementedError

  def query_rows(self, query) -> tf.Tensor:
    """Score rows a request's `query` makes per item: its batch size."""
    return tf.shape(query)[0]

  def _items_per_chunk(self, query) -> tf.Tensor:
    return tf.maximum(1, self._cells_per_chunk // self.query_rows(query))

  def _transform(self, raw: Mapping[str, tf.Tensor]) -> Mapping[str, tf.Tensor]:
    """Runs the Transform graph on a subset of raw features."""
    return self.tft_layer(
        complete_raw_features(raw, self._raw_feature_spec))

  def _seen_pairs(self, history: tf.Tensor,
                  seen_item_ids: tf.SparseTensor | None = None) -> tf.Tensor:
    """`[n, 2]` (row, item index) pairs of the items each user has seen.

    Args:
      history: `[batch, length]` item indices the model reads.
      seen_item_ids: raw ids of more items each user already has, beyond the
        history's cap (an eval example's `SEEN_ITEM_IDS`).
    """
    history = tf.cast(history, tf.int64)
    rows = tf.broadcast_to(
        tf.range(tf.shape(history, out_type=tf.int64)[0])[:, tf.newaxis],
        tf.shape(history, out_type=tf.int64))
    pairs = tf.reshape(tf.stack([rows, history], axis=2), [-1, 2])
    if seen_item_ids is None:
      return pairs
    index = self._index_of_item.lookup(seen_item_ids.values)
    known = index >= 0
    return tf.concat([pairs, tf.stack(
        [tf.boolean_mask(seen_item_ids.indices[:, 0], known),
         tf.boolean_mask(index, known)], axis=1)], axis=0)

  def _query_features(self, user_id, history_item_ids, timestamp):
    return self._transform({
        features.USER_ID: user_id,
        features.HISTORY_ITEM_IDS: history_item_ids,
        features.TIMESTAMP: timestamp,
    })

  def _top_k(self, user_id, history_item_ids, timestamp, k: int):
    transformed = self._query_features(user_id, history_item_ids, timestamp)
    query = self.catalogue_query(transformed)
    history = transformed[features.HISTORY_ITEM_INDICES]
    top_scores, top_indices = chunked_top_k(
        lambda start, size: self.score_chunk(query, start, size),
        self.servable_items, self._seen_pairs(history), tf.shape(history)[0],
        k, self._items_per_chunk(query))
    return {serving_names.ITEM_IDS: tf.gather(self.item_ids, top_indices),
            serving_names.SCORES: top_scores}

  def _target_ranks(self, raw, transformed) -> dict[str, tf.Tensor]:
    """`evaluate`'s outputs: the target's rank by the model and popularity."""
    target = tf.cast(transformed[features.ITEM_INDEX], tf.int64)
    query = self.catalogue_query(transformed)

    def popularity(start, size):
      return tf.broadcast_to(self.popularity[start:start + size], tf.stack(
          [tf.shape(target, out_type=tf.int64)[0], size]))

    # Every train item of the user is excluded, except the target itself: a
    # repeat purchase is still a right answer (as in `offline_eval`).
    model, popularity = chunked_target_ranks(
        [lambda start, size: self.score_chunk(query, start, size),
         popularity], self.servable_items,
        self._seen_pairs(transformed[features.HISTORY_ITEM_INDICES],
                         raw[features.SEEN_ITEM_IDS]),
        target, self._items_per_chunk(query))
    return {serving_names.TARGET_RANK: model,
            serving_names.POPULARITY_TARGET_RANK: popularity}

  def signatures(self) -> dict:
    """Builds the concrete functions to pass to `tf.saved_model.save`."""
    query_specs = (
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
        tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
    )

    @tf.function(input_signature=query_specs)
    def query_embedding(user_id, history_item_ids, timestamp):
      return {serving_names.EMBEDDING: self.query_vector(
          self._query_features(user_id, history_item_ids, timestamp))}

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
        tf.TensorSpec([None], tf.string, name=features.ITEM_TITLE),
        tf.TensorSpec([None, None], tf.string, name=features.ITEM_CATEGORIES),
    ))
    def candidate_embedding(item_id, item_title, item_categories):
      transformed = self._transform({
          features.ITEM_ID: item_id,
          features.ITEM_TITLE: item_title,
          features.ITEM_CATEGORIES: item_categories,
      })
      return {serving_names.EMBEDDING: self.candidate_vector(transformed)}

    def retrieve(k):
      @tf.function(input_signature=query_specs)
      def retrieve_top_k(user_id, history_item_ids, timestamp):
        return self._top_k(user_id, history_item_ids, timestamp, k)
      return retrieve_top_k

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name=serving_names.EXAMPLES),))
    def evaluate(examples):
      raw = tf.io.parse_example(examples, self._raw_feature_spec)
      return self._target_ranks(raw, self.tft_layer(raw))

    retrieval = {serving_names.retrieve_top(k): retrieve(k).get_concrete_function()
                 for k in serving_names.RETRIEVE_TOP_KS}
    return {
        serving_names.DEFAULT: retrieval[serving_names.retrieve_top(10)],
        **retrieval,
        serving_names.QUERY_EMBEDDING: query_embedding.get_concrete_function(),
        serving_names.CANDIDATE_EMBEDDING: candidate_embedding.get_concrete_function(),
        serving_names.EVALUATE: evaluate.get_concrete_function(),
    }

  def save(self, export_dir: str) -> None:
    tf.saved_model.save(self, export_dir, signatures=self.signatures())


class RetrievalServingModule(CatalogueServingModule):
  """Everything a two-tower retrieval SavedModel serves.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    query_tower: transformed features -> `[batch, dim]` embeddings, or
      `[batch, K, dim]` for a multi-vector model (scored by the max over K).
    candidate_tower: transformed features -> `[batch, dim]` embeddings.
    catalogue: the items to retrieve from.
    cells_per_chunk: scores of `[batch, K, items]` computed at once.
  """

  def __init__(self, tft_layer, raw_feature_spec, query_tower: Callable,
               candidate_tower: Callable, catalogue: ItemCatalogue,
               cells_per_chunk: int = CELLS_PER_CHUNK):
    super().__init__(tft_layer, raw_feature_spec, catalogue, cells_per_chunk)
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    self.item_embeddings = tf.Variable(
        candidate_tower(
            {k: tf.constant(v) for k, v in catalogue.candidate_features.items()}),
        trainable=False, name="item_embeddings")

  def query_vector(self, transformed):
    return self.query_tower(transformed)

  def candidate_vector(self, transformed):
    return self.candidate_tower(transformed)

  def catalogue_query(self, transformed):
    return self.query_tower(transformed)

  def query_rows(self, query):
    # A K-vector query scores K rows per user before their max.
    return tf.reduce_prod(tf.shape(query)[:-1])

  def score_chunk(self, query, start, size):
    return score_items(query, self.item_embeddings[start:start + size])
