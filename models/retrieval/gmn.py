"""GMN: bi-level graph matching for video retrieval (arXiv 2408.00346).

A user is a dual graph: the videos they watched and the items they
interacted with, two bipartite neighbourhoods sharing the user. Videos and
items are nodes of one index space. The query tower turns the dual graph
into one user vector:

0. multi-hop propagation: a node's embedding is the mean of its K + 1
   layers of light graph convolution (LightGCN's, `layers.graph_convolution`)
   over the train graph of users x nodes, whose edges are the user-video
   and user-item interactions. So a video neighbour carries the users who
   watched it and, at 2 hops, those users' other videos and items;
1. node-level matching: `CrossGraphAttention` between the video neighbours and
   the item neighbours, so each video is rewritten by the items that explain
   it and each item by the videos;
2. preference-level matching: K learnable preference queries per side extract
   preferences from the (matched) nodes, and a second `CrossGraphAttention`
   matches video preferences against item preferences;
3. bi-level aggregation: gated-sum pooling of both node sets and both
   preference sets, concatenated, then an MLP.

The video tower embeds the candidate video by the same node embedding as the
neighbours. Training is `two_tower.RetrievalModel`: in-batch softmax with
the logQ correction; with propagation both towers of a step read one
propagation (`graph_retrieval.GraphRetrievalModel`), and the export reads a
node table frozen when it is written, so a request gathers its neighbours'
rows and never propagates; it reads no user embedding, so users outside the
train graph are served alike. The paper's equations are not public;
docs/gmn.md lists every choice made here. `GmnConfig`'s switches give the
ablations: no item side (videos-only two-tower), both sides without
matching, either or both matching levels, and `propagation_layers=0`, one
matching round over the user's own neighbours' id embeddings.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

from data import features
from models.layers import graph_convolution
from models.layers import graph_matching
from models.layers import mlp
from models.retrieval import graph_retrieval
from models.retrieval import two_tower


@dataclasses.dataclass(frozen=True)
class GmnConfig(two_tower.TwoTowerConfig):
  """Two-tower retrieval hyperparameters plus GMN's.

  Attributes:
    use_item_side: read the item neighbours; False gives the videos-only
      two-tower baseline.
    node_matching: cross-graph attention between video and item neighbours.
    preference_matching: extract and match K preferences per side.
    num_preferences: K, learnable preference queries per side.
    matching: "softmax" or "sinkhorn", for both matching levels.
    sinkhorn_iterations: Sinkhorn normalisation rounds.
    max_neighbours: the most recent neighbours kept per side; the pipeline's
      lists hold up to the whole history (`history_length`), and matching
      costs grow with the product of both sides' lengths.
    propagation_layers: K, the hops of light graph convolution over the
      train graph of users x nodes that node embeddings are the mean of
      their K + 1 layers over; 0 reads the id embeddings themselves (no
      graph, GMN before propagation).
    epochs, early_stopping_min_improvement: `two_tower.VALIDATED_EPOCH_BUDGET`
      and `two_tower.MIN_RECALL_IMPROVEMENT`.
  """
  use_item_side: bool = True
  node_matching: bool = True
  preference_matching: bool = True
  num_preferences: int = 4
  matching: str = graph_matching.MATCHING_SOFTMAX
  sinkhorn_iterations: int = 10
  max_neighbours: int = 32
  propagation_layers: int = 2
  epochs: int = two_tower.VALIDATED_EPOCH_BUDGET
  early_stopping_min_improvement: float = two_tower.MIN_RECALL_IMPROVEMENT

  def __post_init__(self):
    if (self.node_matching or self.preference_matching) and not self.use_item_side:
      raise ValueError("matching needs the item side (use_item_side=True)")
    if self.matching not in graph_matching.MATCHING_MODES:
      raise ValueError(f"matching must be one of {graph_matching.MATCHING_MODES}")
    if self.propagation_layers < 0:
      raise ValueError("propagation_layers must be >= 0, got "
                       f"{self.propagation_layers}")


# The paper's ablation ladder: `GmnConfig` switches per variant, from the
# videos-only two-tower baseline up to both matching levels. The benchmark
# trains each; the unit tests build each. The baseline reads no graph: the
# propagated embeddings of its video neighbours would carry items (through
# their users). Full GMN without propagation is `propagation_layers=0`.
ABLATIONS = {
    "a_two_tower_videos_only": dict(use_item_side=False, node_matching=False,
                                    preference_matching=False,
                                    propagation_layers=0),
    "b_pooled_both_sides": dict(node_matching=False, preference_matching=False),
    "c_node_level_only": dict(preference_matching=False),
    "d_preference_level_only": dict(node_matching=False),
    "e_full_gmn": {},
}


def most_recent(indices: tf.Tensor, count: int) -> tf.Tensor:
  """The last `count` real entries of left-compacted, 0-padded rows.

  Args:
    indices: `[batch, length]`, each row's entries oldest first, then padding.
    count: entries to keep.

  Returns:
    `[batch, count]`; rows with fewer entries are padded on the left.
  """
  lengths = tf.reduce_sum(
      tf.cast(tf.not_equal(indices, features.PADDING_INDEX), tf.int32), axis=1)
  positions = lengths[:, tf.newaxis] - count + tf.range(count)[tf.newaxis, :]
  kept = tf.gather(indices, tf.maximum(positions, 0), batch_dims=1)
  return tf.where(positions >= 0, kept, tf.zeros_like(kept))


def _neighbours(inputs: Mapping[str, tf.Tensor], name: str,
                embedding: tf.keras.layers.Layer,
                max_neighbours: int) -> tuple[tf.Tensor, tf.Tensor]:
  indices = most_recent(inputs[name], max_neighbours)
  return embedding(indices), tf.not_equal(indices, features.PADDING_INDEX)


class DualGraphQueryTower(tf.keras.Model):
  """Embeds a user from their video and item neighbours by graph matching."""

  def __init__(self, node_embedding: tf.keras.layers.Layer, config: GmnConfig):
    super().__init__(name="dual_graph_query_tower")
    self.config = config
    self.node_embedding = node_embedding
    dim = config.embedding_dim
    if config.node_matching:
      self.node_matching = graph_matching.CrossGraphAttention(
          dim, config.matching, config.sinkhorn_iterations, name="node_matching")
    if config.preference_matching:
      self.video_preferences = graph_matching.PreferenceExtraction(
          config.num_preferences, dim, name="video_preferences")
      self.item_preferences = graph_matching.PreferenceExtraction(
          config.num_preferences, dim, name="item_preferences")
      self.preference_matching = graph_matching.CrossGraphAttention(
          dim, config.matching, config.sinkhorn_iterations,
          name="preference_matching")
    self.aggregator = graph_matching.BiLevelAggregator(
        num_node_sets=2 if config.use_item_side else 1,
        num_preference_sets=2 if config.preference_matching else 0, dim=dim)
    self.mlp = mlp.mlp(config.tower_units, "gmn_query_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    videos, video_mask = _neighbours(inputs, features.VIDEO_NEIGHBOUR_INDICES,
                                     self.node_embedding,
                                     self.config.max_neighbours)
    node_sets, preference_sets = [(videos, video_mask)], []
    if self.config.use_item_side:
      items, item_mask = _neighbours(inputs, features.ITEM_NEIGHBOUR_INDICES,
                                     self.node_embedding,
                                     self.config.max_neighbours)
      if self.config.node_matching:
        videos, items = self.node_matching(videos, video_mask, items, item_mask)
      node_sets = [(videos, video_mask), (items, item_mask)]
      if self.config.preference_matching:
        video_preferences, video_preference_mask = self.video_preferences(
            videos, video_mask)
        item_preferences, item_preference_mask = self.item_preferences(
            items, item_mask)
        video_preferences, item_preferences = self.preference_matching(
            video_preferences, video_preference_mask, item_preferences,
            item_preference_mask)
        preference_sets = [(video_preferences, video_preference_mask),
                           (item_preferences, item_preference_mask)]
    user = self.aggregator(node_sets, preference_sets)
    return tf.math.l2_normalize(self.mlp(user), axis=-1)


class VideoTower(tf.keras.Model):
  """Embeds a candidate video by the neighbours' node embedding."""

  def __init__(self, node_embedding: tf.keras.layers.Layer, config: GmnConfig):
    super().__init__(name="video_tower")
    self.node_embedding = node_embedding
    self.mlp = mlp.mlp(config.tower_units, "video_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    videos = self.node_embedding(inputs[features.ITEM_INDEX])
    return tf.math.l2_normalize(self.mlp(videos), axis=-1)


class PropagatedNodes(tf.keras.layers.Layer):
  """Nodes' multi-hop embeddings: the mean of their K + 1 layers over the
  train graph of users x nodes."""

  def __init__(self, graph: graph_convolution.GraphEmbeddings):
    super().__init__(name="propagated_nodes")
    self.graph = graph

  def call(self, indices: tf.Tensor) -> tf.Tensor:
    _, node_layers = self.graph.layers()
    return graph_convolution.final_embeddings(node_layers, indices)


class FrozenNodes(graph_convolution.FrozenTables):
  """`PropagatedNodes`' table stored once, for the export."""

  def __init__(self, nodes: PropagatedNodes):
    _, node_layers = nodes.graph.layers()
    super().__init__([tf.reduce_mean(node_layers, axis=0)])

  def __call__(self, indices: tf.Tensor) -> tf.Tensor:
    return tf.gather(self.tables[0], indices)


def _trained_weights(tower: tf.keras.Model, node_embedding) -> list:
  """`tower`'s weights but those of its `node_embedding`, in Keras' order."""
  skipped = {variable.ref() for variable in node_embedding.variables}
  return [variable for variable in tower.weights
          if variable.ref() not in skipped]


def _empty_request() -> dict[str, tf.Tensor]:
  """One padding-only user and candidate: a call that builds a tower."""
  return {features.VIDEO_NEIGHBOUR_INDICES: tf.zeros([1, 1], tf.int64),
          features.ITEM_NEIGHBOUR_INDICES: tf.zeros([1, 1], tf.int64),
          features.ITEM_INDEX: tf.zeros([1], tf.int64)}


class GmnModel(graph_retrieval.GraphRetrievalModel):
  """GMN over propagated node embeddings (`propagation_layers > 0`)."""

  def __init__(self, nodes: PropagatedNodes, catalogue_features,
               item_sampling_probability, config: GmnConfig):
    super().__init__(nodes.graph, DualGraphQueryTower(nodes, config),
                     VideoTower(nodes, config), catalogue_features,
                     item_sampling_probability, config)
    self.nodes = nodes

  def serving_towers(self) -> tuple[tf.keras.Model, tf.keras.Model]:
    """Copies of the towers over a frozen node table: later training
    changes neither."""
    with self.embeddings.propagated():
      frozen = FrozenNodes(self.nodes)
      towers = two_tower.appended_towers(
          DualGraphQueryTower(frozen, self.config),
          VideoTower(frozen, self.config),
          self.item_sampling_probability.numpy(), self.config)
      for source, target in zip((self.query_tower, self.candidate_tower),
                                towers):
        # Both built, so that every weight exists to copy.
        source(_empty_request())
        target(_empty_request())
        weights = _trained_weights(source, self.nodes)
        copies = _trained_weights(target, frozen)
        if len(copies) != len(weights):
          raise RuntimeError(f"{target.name}: {len(weights)} trained weights "
                             f"for {len(copies)} copies")
        for copy, weight in zip(copies, weights):
          copy.assign(weight)
    return towers


def train_graph(users: np.ndarray, nodes: np.ndarray, num_nodes: int
                ) -> graph_convolution.BipartiteGraph:
  """The graph of users x nodes of the interactions `(users[n], nodes[n])`.

  GMN reads no user embedding, so any integer user ids do: the users with
  an edge are renumbered `0..num_users - 1`.
  """
  _, user_rows = np.unique(np.asarray(users), return_inverse=True)
  return graph_convolution.bipartite_graph(
      user_rows, nodes, int(user_rows.max(initial=-1)) + 1, num_nodes)


def build_gmn(vocab: two_tower.VocabularySizes, catalogue_features,
              item_sampling_probability, config: GmnConfig,
              edges: Optional[tuple[np.ndarray, np.ndarray]] = None
              ) -> two_tower.RetrievalModel:
  """GMN: dual-graph query tower, video tower, in-batch softmax with logQ.

  Videos and items share one index space (`vocab.items`), as in the
  pipeline's item vocabulary where `item_type` tells them apart.

  Args:
    vocab: the vocabulary sizes; only `items`, the node index space, is read.
    catalogue_features: `two_tower.RetrievalModel`'s.
    item_sampling_probability: likewise.
    config: the hyperparameters.
    edges: `(user_indices, node_indices)`, the train interactions of both
      sides (user-video and user-item), which `config.propagation_layers`
      hops propagate over; user indices are any integer ids, node indices
      lie in `[0, vocab.items)`. Not read with `propagation_layers=0`.

  Returns:
    A `GmnModel`, or with `propagation_layers=0` a `two_tower.RetrievalModel`
    over one id embedding table.

  Raises:
    ValueError: with `propagation_layers > 0` and no `edges`.
  """
  if not config.propagation_layers:
    node_embedding = tf.keras.layers.Embedding(
        vocab.items, config.embedding_dim, name="node_embedding")
    return two_tower.RetrievalModel(
        DualGraphQueryTower(node_embedding, config),
        VideoTower(node_embedding, config),
        catalogue_features, item_sampling_probability, config)
  if edges is None:
    raise ValueError(
        f"GMN with propagation_layers={config.propagation_layers} needs the "
        "train graph: pass edges=(user_indices, node_indices), or set "
        "propagation_layers=0")
  graph = graph_convolution.GraphEmbeddings(
      train_graph(*edges, vocab.items), config.embedding_dim,
      config.propagation_layers, name="node_graph")
  return GmnModel(PropagatedNodes(graph), catalogue_features,
                  item_sampling_probability, config)
