"""The SavedModels of the CTR families.

- `courier` exports `CourierExportModule`: the frozen item embedding table by
  raw item id (`item_ids`, `item_embeddings` and an `item_embedding`
  signature), which `load_content_table` aligns to a ranker's vocabulary;
  pre-trained with images, also the image embedding of every item
  (`image_embeddings`, aligned by `load_image_table`), computed once after
  pre-training so that nothing downstream decodes an image.
- `ranking` (and `seminar`, through `models.seminar.export.SeminarScorer`)
  export `RankingServingModule`: raw features in, with the Transform graph
  inside, click probability out:
  - `serving_default`: user_id, item_id, history_item_ids, timestamp ->
    `probability` of a click;
  - `serving_history_queries`: the same plus `history_queries` (the search
    query of each history item, "" for none), which SEMINAR reads;
  - `evaluate`: serialized raw tf.Examples -> `probability`, for TFMA's AUC
    and log loss.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import serving_names
from models.ctr import ranking


class CourierExportModule(tf.Module):
  """COURIER's artefact: the frozen item embedding table, by raw item id.

  Args:
    item_ids: `[num_items]` raw ids ("" at padding and OOV).
    table: `[num_items, dim]` embeddings.
    image_table: `[num_items, image_dim]` image embeddings, or None when
      pre-trained without images.
  """

  def __init__(self, item_ids: np.ndarray, table: np.ndarray,
               image_table: np.ndarray | None = None):
    super().__init__()
    self.item_ids = tf.Variable(item_ids.astype(str), trainable=False,
                                name="item_ids")
    self.item_embeddings = tf.Variable(table, trainable=False,
                                       name="item_embeddings")
    if image_table is not None:
      self.image_embeddings = tf.Variable(image_table, trainable=False,
                                          name="image_embeddings")
    known = item_ids.astype(str) != ""
    self._lookup = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(item_ids.astype(str)[known]),
            tf.constant(np.flatnonzero(known), tf.int64)),
        default_value=len(item_ids) - 1)

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name=features.ITEM_ID),))
  def item_embedding(self, item_id):
    """Embedding of each id; unknown ids get the OOV row."""
    return {serving_names.EMBEDDING: tf.gather(self.item_embeddings, self._lookup.lookup(item_id))}

  def save(self, export_dir: str) -> None:
    tf.saved_model.save(self, export_dir, signatures={
        serving_names.ITEM_EMBEDDING: self.item_embedding.get_concrete_function()})


def _aligned(loaded, table: tf.Variable,
             item_vocabulary: list[str]) -> np.ndarray:
  return ranking.align_embedding_table(
      [item_id.decode() for item_id in loaded.item_ids.numpy()],
      table.numpy(), item_vocabulary)


def load_content_table(base_model_dir: str,
                       item_vocabulary: list[str]) -> np.ndarray:
  """COURIER's table, aligned to `item_vocabulary` (see `align_embedding_table`)."""
  loaded = tf.saved_model.load(base_model_dir)
  return _aligned(loaded, loaded.item_embeddings, item_vocabulary)


def load_image_table(base_model_dir: str,
                     item_vocabulary: list[str]) -> np.ndarray | None:
  """COURIER's image embeddings aligned like `load_content_table`; None
  when it was pre-trained without images."""
  loaded = tf.saved_model.load(base_model_dir)
  if not hasattr(loaded, "image_embeddings"):
    return None
  return _aligned(loaded, loaded.image_embeddings, item_vocabulary)


class RankingServingModule(tf.Module):
  """The ranking SavedModel: raw features in, click probability out.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    model: a built (trained) model: transformed features -> `[batch]` click
      logits.
  """

  def __init__(self, tft_layer, raw_feature_spec, model):
    super().__init__()
    self.tft_layer = tft_layer
    self._raw_feature_spec = dict(raw_feature_spec)
    # Only the model's variables are tracked: saving the Keras model itself
    # would also trace every layer's call, which is slow and unused.
    self.model_variables = list(model.variables)
    self._logits = model.__call__

  def _probability(self, transformed: Mapping[str, tf.Tensor]):
    return {serving_names.RANKER_PROBABILITY: tf.sigmoid(self._logits(transformed))}

  def _serve(self, raw: Mapping[str, tf.Tensor]):
    """Scores a request's dense raw features; absent ones are empty."""
    return self._probability(self.tft_layer(
        catalogue_lib.complete_raw_features(raw, self._raw_feature_spec)))

  def signatures(self) -> dict:
    """The concrete functions to pass to `tf.saved_model.save`.

    `serving_names.RANKER_HISTORY_QUERIES` is there when the Transform
    reads `history_queries`; models that do not use them ignore them.
    """
    request = (
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
        tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
        tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
    )

    @tf.function(input_signature=request)
    def serving_default(user_id, item_id, history_item_ids, timestamp):
      return self._serve({features.USER_ID: user_id, features.ITEM_ID: item_id,
                          features.HISTORY_ITEM_IDS: history_item_ids,
                          features.TIMESTAMP: timestamp})

    # `history_queries` `[batch, history]`, aligned with `history_item_ids`;
    # "" where a history interaction had no query.
    @tf.function(input_signature=request + (
        tf.TensorSpec([None, None], tf.string, name=features.HISTORY_QUERIES),))
    def serving_history_queries(user_id, item_id, history_item_ids, timestamp,
                                history_queries):
      return self._serve({features.USER_ID: user_id, features.ITEM_ID: item_id,
                          features.HISTORY_ITEM_IDS: history_item_ids,
                          features.TIMESTAMP: timestamp,
                          features.HISTORY_QUERIES: history_queries})

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name=serving_names.EXAMPLES),))
    def evaluate(examples):
      raw = tf.io.parse_example(examples, self._raw_feature_spec)
      return self._probability(self.tft_layer(raw))

    signatures = {
        serving_names.DEFAULT: serving_default.get_concrete_function(),
        serving_names.EVALUATE: evaluate.get_concrete_function()}
    if features.HISTORY_QUERIES in self._raw_feature_spec:
      signatures[serving_names.RANKER_HISTORY_QUERIES] = (
          serving_history_queries.get_concrete_function())
    return signatures

  def save(self, export_dir: str) -> None:
    tf.saved_model.save(self, export_dir, signatures=self.signatures())
