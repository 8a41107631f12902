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
from typing import Callable, Mapping

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


def _rank_of_target(scores: tf.Tensor, available: tf.Tensor,
                    target_index: tf.Tensor) -> tf.Tensor:
  """0-based rank of the target among the available items.

  Ties count against the target, as in `offline_eval.protocols`: a constant
  scorer ranks it last, never first or in the middle. A target that is not
  available (outside the catalogue) gets the worst rank.
  """
  target_score = tf.gather(scores, target_index, batch_dims=1)[:, tf.newaxis]
  competitors = tf.logical_and(available, tf.logical_not(
      tf.one_hot(target_index, tf.shape(scores)[1], on_value=True,
                 off_value=False)))
  ahead = tf.reduce_sum(tf.cast(
      tf.logical_and(competitors, scores >= target_score), tf.float32), axis=1)
  servable = tf.gather(available, target_index, batch_dims=1)
  worst = tf.reduce_sum(tf.cast(competitors, tf.float32), axis=1)
  return tf.where(servable, ahead, worst)


class CatalogueServingModule(tf.Module):
  """The signatures of every model that scores the whole catalogue.

  Subclasses say what a query and a candidate are (`query_vector`,
  `candidate_vector`) and how the catalogue is scored (`score_catalogue`);
  this class serves them under the `models.serving_names` signatures, with
  the same raw inputs, history exclusion and `evaluate` ranks for every
  family.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    catalogue: the items to retrieve from.
  """

  def __init__(self, tft_layer, raw_feature_spec, catalogue: ItemCatalogue):
    super().__init__()
    self.tft_layer = tft_layer
    self._raw_feature_spec = dict(raw_feature_spec)
    self.item_ids = tf.constant(catalogue.item_ids.astype(str))
    self.popularity = tf.constant(catalogue.train_counts, tf.float32)
    # Padding and OOV indices hold no real item.
    self.servable_items = tf.constant(catalogue.train_counts > 0)
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

  def score_catalogue(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch, num_indices]` scores of every item index for each query."""
    raise NotImplementedError

  def _transform(self, raw: Mapping[str, tf.Tensor]) -> Mapping[str, tf.Tensor]:
    """Runs the Transform graph on a subset of raw features."""
    return self.tft_layer(
        complete_raw_features(raw, self._raw_feature_spec))

  def _available(self, history: tf.Tensor,
                 seen_item_ids: tf.SparseTensor | None = None) -> tf.Tensor:
    """`[batch, items]` mask: servable, not in the history nor in `seen`.

    Args:
      history: `[batch, length]` item indices the model reads.
      seen_item_ids: raw ids of more items each user already has, beyond the
        history's cap (an eval example's `SEEN_ITEM_IDS`).
    """
    seen = tf.reduce_any(tf.one_hot(history, tf.shape(self.item_ids)[0],
                                    on_value=True, off_value=False,
                                    dtype=tf.bool), axis=1)
    if seen_item_ids is not None:
      index = self._index_of_item.lookup(seen_item_ids.values)
      known = index >= 0
      seen = tf.tensor_scatter_nd_update(
          seen,
          tf.stack([tf.boolean_mask(seen_item_ids.indices[:, 0], known),
                    tf.boolean_mask(index, known)], axis=1),
          tf.ones([tf.reduce_sum(tf.cast(known, tf.int32))], tf.bool))
    return tf.logical_and(self.servable_items[tf.newaxis, :],
                          tf.logical_not(seen))

  def _query_features(self, user_id, history_item_ids, timestamp):
    return self._transform({
        features.USER_ID: user_id,
        features.HISTORY_ITEM_IDS: history_item_ids,
        features.TIMESTAMP: timestamp,
    })

  def _top_k(self, user_id, history_item_ids, timestamp, k: int):
    transformed = self._query_features(user_id, history_item_ids, timestamp)
    scores = self.score_catalogue(transformed)
    available = self._available(transformed[features.HISTORY_ITEM_INDICES])
    scores = tf.where(available, scores, _UNAVAILABLE_SCORE)
    k = tf.minimum(k, tf.shape(scores)[1])
    top_scores, top_indices = tf.math.top_k(scores, k=k)
    return {serving_names.ITEM_IDS: tf.gather(self.item_ids, top_indices),
            serving_names.SCORES: top_scores}

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
      transformed = self.tft_layer(raw)
      target = transformed[features.ITEM_INDEX]
      # Every train item of the user is excluded, except the target itself:
      # a repeat purchase is still a right answer (as in `offline_eval`).
      available = tf.logical_or(
          self._available(transformed[features.HISTORY_ITEM_INDICES],
                          raw[features.SEEN_ITEM_IDS]),
          tf.logical_and(self.servable_items[tf.newaxis, :], tf.one_hot(
              target, tf.shape(self.item_ids)[0], on_value=True,
              off_value=False, dtype=tf.bool)))
      model_scores = self.score_catalogue(transformed)
      popularity_scores = tf.broadcast_to(self.popularity, tf.shape(model_scores))
      return {
          serving_names.TARGET_RANK: _rank_of_target(model_scores, available, target),
          serving_names.POPULARITY_TARGET_RANK: _rank_of_target(popularity_scores, available,
                                                  target),
      }

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
  """

  def __init__(self, tft_layer, raw_feature_spec, query_tower: Callable,
               candidate_tower: Callable, catalogue: ItemCatalogue):
    super().__init__(tft_layer, raw_feature_spec, catalogue)
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

  def score_catalogue(self, transformed):
    return score_items(self.query_tower(transformed), self.item_embeddings)
