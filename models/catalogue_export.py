"""Serving signatures of every model that scores the whole catalogue.

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
the whole catalogue; `models.retrieval.export.RetrievalServingModule` is its
two-tower form, and `models.item_item.export` its form for item-item weights
(EASE^R, item-kNN).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import catalogue_scoring
from models import serving_names


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

  def __init__(self, tft_layer, raw_feature_spec,
               catalogue: catalogue_lib.ItemCatalogue,
               cells_per_chunk: int = catalogue_scoring.CELLS_PER_CHUNK):
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
        catalogue_lib.complete_raw_features(raw, self._raw_feature_spec))

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
    top_scores, top_indices = catalogue_scoring.chunked_top_k(
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
    model, popularity = catalogue_scoring.chunked_target_ranks(
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

