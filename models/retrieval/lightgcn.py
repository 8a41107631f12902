"""LightGCN: graph collaborative filtering (He et al., SIGIR 2020).

Every user and item has a free layer-0 embedding. K light graph convolutions
over the train split's user-item graph (`layers.graph_convolution`) move
them along the edges, and a node's embedding is the mean of its K + 1
layers. A user's score for an item is the dot product of the two, or their
cosine over a temperature (`normalize`).

As a product family it is a `two_tower.RetrievalModel`, trained by TFRS's
retrieval task with in-batch negatives and the logQ correction, like every
other retrieval family here; the paper trains with BPR on one sampled
negative. The regularisation is the paper's: an L2 penalty on the layer-0
embeddings of the batch's users and items.

Training reads each batch user's graph neighbourhood, as the paper does.
Serving reads the request: the query tower applies LightGCN's user update to
the distinct items of the request's history (`graph_convolution.
user_layers_from_history`) plus the user's own layer-0 embedding when the
user was in the train graph. When the history holds the user's train items
this is the trained embedding exactly; an unknown user is served from their
history alone, and a known user's newer items count at once. Histories
are capped at `features.HISTORY_LENGTH` items, so a user with more train
items is served from their most recent ones.

The exported towers (`FrozenTables`) gather from stored tables: a request
costs `K * history length` lookups, not a propagation over the graph.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from data import features
from models.layers import graph_convolution
from models.retrieval import graph_retrieval
from models.retrieval import two_tower


@dataclasses.dataclass(frozen=True)
class LightGcnConfig(two_tower.TwoTowerConfig):
  """Two-tower retrieval hyperparameters plus LightGCN's.

  `tower_units` and `use_request_context` do not apply: LightGCN has no
  feature transform and reads no request time.

  Attributes:
    num_layers: K, the graph convolutions (the paper's best: 3).
    embedding_l2: the L2 penalty on the batch's layer-0 user and item
      embeddings, per example (the paper's lambda, 1e-4).
    normalize: score by cosine over `temperature` (as the other retrieval
      families) rather than the paper's raw dot product.
    epochs, early_stopping_min_improvement: `two_tower.VALIDATED_EPOCH_BUDGET`
      and `two_tower.MIN_RECALL_IMPROVEMENT`.
  """
  num_layers: int = 3
  embedding_l2: float = 1e-4
  normalize: bool = True
  temperature: float = 0.1
  learning_rate: float = 0.001
  batch_size: int = 2048
  early_stopping_patience: int = 3
  epochs: int = two_tower.VALIDATED_EPOCH_BUDGET
  early_stopping_min_improvement: float = two_tower.MIN_RECALL_IMPROVEMENT

  def __post_init__(self):
    if self.num_layers < 0:
      raise ValueError(f"num_layers must be >= 0, got {self.num_layers}")
    if self.item_bias:
      # The paper's score has no bias, and the frozen export would not carry
      # a trained one.
      raise ValueError("LightGCN takes no item_bias")


class GraphEmbeddings(graph_convolution.GraphEmbeddings):
  """The layer-0 tables, their propagation, and what a request is scored
  from."""

  def serving_tables(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`(user_layer_0, item_layers, item_degrees)` a request is scored from;
    users outside the graph have a zero layer-0 embedding."""
    user_layers, item_layers = self.layers()
    in_graph = tf.cast(self.user_degrees > 0, tf.float32)[:, tf.newaxis]
    return user_layers[0] * in_graph, item_layers, self.item_degrees

  def item_layers(self) -> tf.Tensor:
    """`[K + 1, items, dim]`, what a candidate is scored from."""
    return self.layers()[1]


class FrozenTables(graph_convolution.FrozenTables):
  """`GraphEmbeddings.serving_tables` stored once, for the export."""

  def __init__(self, embeddings: GraphEmbeddings):
    super().__init__(embeddings.serving_tables())

  def serving_tables(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    return self.tables

  def item_layers(self) -> tf.Tensor:
    return self.tables[1]


def _mean_squared_norm(table: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  return tf.reduce_mean(tf.reduce_sum(tf.square(tf.gather(table, indices)),
                                      axis=-1))


def _scored(vectors: tf.Tensor, normalize: bool) -> tf.Tensor:
  return tf.math.l2_normalize(vectors, axis=-1) if normalize else vectors


class QueryTower(tf.keras.Model):
  """A user's mean over layers, from their request's history."""

  def __init__(self, tables, config: LightGcnConfig):
    super().__init__(name="lightgcn_query_tower")
    self.tables = tables
    self.config = config

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    user_layer_0, item_layers, item_degrees = self.tables.serving_tables()
    propagated = graph_convolution.user_layers_from_history(
        inputs[features.HISTORY_ITEM_INDICES], item_layers, item_degrees,
        features.PADDING_INDEX)
    layers = tf.concat([tf.gather(user_layer_0, inputs[features.USER_INDEX])[
        tf.newaxis], propagated], axis=0)
    return _scored(tf.reduce_mean(layers, axis=0), self.config.normalize)


class TrainingQueryTower(QueryTower):
  """`QueryTower` that, in training, reads the user's train graph row.

  Only the trained model has it: the exported tower (over `FrozenTables`,
  which keep no user layers past 0) is a `QueryTower`, whose `call` has no
  training branch for the SavedModel to trace.
  """

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    if not training:
      return super().call(inputs)
    user_layers, _ = self.tables.layers()
    return _scored(graph_convolution.final_embeddings(
        user_layers, inputs[features.USER_INDEX]), self.config.normalize)


class CandidateTower(tf.keras.Model):
  """An item's mean over its K + 1 layers."""

  def __init__(self, tables, config: LightGcnConfig):
    super().__init__(name="lightgcn_candidate_tower")
    self.tables = tables
    self.config = config

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    # Not `serving_tables()`: a candidate needs no user table.
    return _scored(graph_convolution.final_embeddings(
        self.tables.item_layers(), inputs[features.ITEM_INDEX]),
                   self.config.normalize)


class LightGcnModel(graph_retrieval.GraphRetrievalModel):
  """`GraphRetrievalModel` with the paper's L2 penalty."""

  def __init__(self, embeddings: GraphEmbeddings, catalogue_features,
               item_sampling_probability, config: LightGcnConfig):
    super().__init__(embeddings, TrainingQueryTower(embeddings, config),
                     CandidateTower(embeddings, config), catalogue_features,
                     item_sampling_probability, config)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    loss = super().compute_loss(inputs, training)
    if not training:
      return loss
    return loss + self.config.embedding_l2 * (
        _mean_squared_norm(self.embeddings.user_table,
                           inputs[features.USER_INDEX]) +
        _mean_squared_norm(self.embeddings.item_table,
                           inputs[features.ITEM_INDEX]))

  def graph_user_vectors(self, users: tf.Tensor) -> tf.Tensor:
    """`[batch, dim]` the users' vectors from their train graph rows, as
    training scores them (a request's history plays no part)."""
    return self.query_tower({features.USER_INDEX: users}, training=True)

  def serving_towers(self) -> tuple[tf.keras.Model, tf.keras.Model]:
    """Query and candidate towers over this model's current tables, frozen."""
    tables = FrozenTables(self.embeddings)
    return QueryTower(tables, self.config), CandidateTower(tables, self.config)


def train_graph(users: np.ndarray, items: np.ndarray, vocab: two_tower.VocabularySizes
                ) -> graph_convolution.BipartiteGraph:
  """The graph of the train interactions over the Transform vocabularies."""
  return graph_convolution.bipartite_graph(users, items, vocab.users, vocab.items)


def build_lightgcn(vocab: two_tower.VocabularySizes, catalogue_features,
                   item_sampling_probability, config: LightGcnConfig,
                   edges: Optional[tuple[np.ndarray, np.ndarray]] = None
                   ) -> LightGcnModel:
  """LightGCN over the train edges `(users, items)`.

  Raises:
    ValueError: without `edges`: LightGCN cannot be built without its graph.
  """
  if edges is None:
    raise ValueError("LightGCN needs the train graph's edges")
  graph = train_graph(*edges, vocab)
  return LightGcnModel(GraphEmbeddings(graph, config.embedding_dim,
                                       config.num_layers),
                       catalogue_features, item_sampling_probability, config)
