"""Serving signatures of an item-item model (families `ease`, `item_knn`).

The same signatures, inputs and outputs as a two-tower export
(`catalogue_export.CatalogueServingModule`), so TFMA, the gate, the Pusher,
the gRPC server and its clients treat these families like any other. The
model is the item-item weight matrix B, kept as each item's top neighbours
(`models.item_item.neighbours`), and a user's score for item j is the sum of
B[i, j] over their history items i. For such a model the signatures mean:

- `retrieve_top10` / `retrieve_top100` / `serving_default`: that score for
  every catalogue item, history items and padding/OOV excluded. `user_id`
  and `timestamp` are accepted but unused: the history is the query.
- `query_embedding`: the history as a `[batch, num_indices]` vector of
  counts per item index (1 per occurrence).
- `candidate_embedding`: item j's column B[:, j], `[batch, num_indices]`,
  so that `query_embedding · candidate_embedding` is the retrieval score.
  Only the item id is read.
- `evaluate`: the target's rank by that score and by popularity, ranked
  exactly as for every retrieval family.

`retrieve_top*` and `evaluate` score the catalogue a chunk of items at a
time, as every `CatalogueServingModule` does; the embeddings are
`[batch, num_indices]` by definition.
"""

from __future__ import annotations

import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import catalogue_export
from models import catalogue_scoring
from models.item_item import neighbours as item_neighbours
from models.layers import item_neighbour_scoring


class ItemNeighboursServingModule(catalogue_export.CatalogueServingModule):
  """Everything an item-item SavedModel serves.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    neighbours: B over the catalogue's item indices.
    catalogue: the items to retrieve from.
    cells_per_chunk: scores of `[batch, items]` computed at once.

  Raises:
    ValueError: if `neighbours` and `catalogue` cover different indices.
  """

  def __init__(self, tft_layer, raw_feature_spec,
               neighbours: item_neighbours.ItemNeighbours,
               catalogue: catalogue_lib.ItemCatalogue,
               cells_per_chunk: int = catalogue_scoring.CELLS_PER_CHUNK):
    if neighbours.num_items != len(catalogue.item_ids):
      raise ValueError(f"{neighbours.num_items} items of neighbours for a "
                       f"catalogue of {len(catalogue.item_ids)} indices")
    super().__init__(tft_layer, raw_feature_spec, catalogue, cells_per_chunk)
    self.scorer = item_neighbour_scoring.ItemNeighbourScorer(
        neighbours.indices, neighbours.weights)

  def query_vector(self, transformed):
    return self.scorer.history_counts(transformed[features.HISTORY_ITEM_INDICES])

  def candidate_vector(self, transformed):
    return self.scorer.item_columns(transformed[features.ITEM_INDEX])

  def catalogue_query(self, transformed):
    return self.scorer.history_neighbours(
        transformed[features.HISTORY_ITEM_INDICES])

  def query_rows(self, query):
    return tf.shape(query[0])[0]

  def score_chunk(self, query, start, size):
    return self.scorer.score_range(query, start, size)
