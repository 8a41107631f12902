"""Serving signatures of a two-tower retrieval model.

`RetrievalServingModule` is `models.catalogue_export.CatalogueServingModule`
for a query tower and a candidate tower: the candidate tower embeds the
whole catalogue once, at export, and a query scores it by dot products (the
max over K for a multi-vector query tower, as in MIND and ComiRec).
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from models import catalogue as catalogue_lib
from models import catalogue_export
from models import catalogue_scoring


class RetrievalServingModule(catalogue_export.CatalogueServingModule):
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
               candidate_tower: Callable,
               catalogue: catalogue_lib.ItemCatalogue,
               cells_per_chunk: int = catalogue_scoring.CELLS_PER_CHUNK):
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
    return catalogue_scoring.score_items(query, self.item_embeddings[start:start + size])
