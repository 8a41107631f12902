"""LightGCN's light graph convolution on a user-item bipartite graph.

He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020, equations 3-4: one layer moves every node's
embedding to its neighbours, weighted by the symmetric normalisation
`1 / sqrt(|N(u)| |N(i)|)`, with no feature transform and no nonlinearity;
a node's final embedding is the mean of its layer-0 to layer-K embeddings
(`alpha_k = 1 / (K + 1)`).

The graph is the distinct (user, item) edges: an item bought twice by a user
is one edge, as in the paper's binary interaction matrix.

`GraphEmbeddings` and `FrozenTables` are what a model trained over the
propagation is built from (LightGCN, GMN's multi-hop node embeddings): the
layer-0 tables with one propagation per training step, and tables stored
once for an export, so that a served request gathers and never propagates.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class BipartiteGraph:
  """The normalised adjacency of a user-item graph and its node degrees.

  Attributes:
    adjacency: `[num_users, num_items]` sparse `R_hat = D_u^-1/2 R D_i^-1/2`.
    user_degrees: `[num_users]` distinct items per user, float32.
    item_degrees: `[num_items]` distinct users per item, float32.
  """
  adjacency: tf.sparse.SparseTensor
  user_degrees: np.ndarray
  item_degrees: np.ndarray


def bipartite_graph(users: np.ndarray, items: np.ndarray, num_users: int,
                    num_items: int) -> BipartiteGraph:
  """The graph of the interactions `(users[n], items[n])`.

  Args:
    users: `[n]` user indices in `[0, num_users)`.
    items: `[n]` item indices in `[0, num_items)`.
    num_users: the user index space, including nodes without an edge.
    num_items: the item index space, likewise.

  Raises:
    ValueError: if an index is outside its space.
  """
  users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
  for name, indices, size in (("user", users, num_users),
                              ("item", items, num_items)):
    if len(indices) and (indices.min() < 0 or indices.max() >= size):
      raise ValueError(f"{name} indices must lie in [0, {size}); got "
                       f"[{indices.min()}, {indices.max()}]")
  edges = np.unique(np.stack([users, items], axis=1), axis=0).reshape(-1, 2)
  user_degrees = np.bincount(edges[:, 0], minlength=num_users).astype(np.float32)
  item_degrees = np.bincount(edges[:, 1], minlength=num_items).astype(np.float32)
  weights = 1.0 / np.sqrt(user_degrees[edges[:, 0]] * item_degrees[edges[:, 1]])
  # np.unique sorts the edges row-major, the order SparseTensor requires.
  adjacency = tf.sparse.SparseTensor(edges, weights.astype(np.float32),
                                     [num_users, num_items])
  return BipartiteGraph(adjacency, user_degrees, item_degrees)


def propagate(adjacency: tf.sparse.SparseTensor, user_embeddings: tf.Tensor,
              item_embeddings: tf.Tensor, num_layers: int
              ) -> tuple[tf.Tensor, tf.Tensor]:
  """Every layer's user and item embeddings, layer 0 first.

  Args:
    adjacency: the graph's `BipartiteGraph.adjacency`.
    user_embeddings: `[num_users, dim]` layer-0 user embeddings.
    item_embeddings: `[num_items, dim]` layer-0 item embeddings.
    num_layers: K, the propagation steps.

  Returns:
    `(user_layers, item_layers)`, `[K + 1, num_users, dim]` and
    `[K + 1, num_items, dim]`; the mean over axis 0 is LightGCN's final
    embedding.
  """
  user_layers, item_layers = [user_embeddings], [item_embeddings]
  for _ in range(num_layers):
    users, items = user_layers[-1], item_layers[-1]
    user_layers.append(tf.sparse.sparse_dense_matmul(adjacency, items))
    item_layers.append(tf.sparse.sparse_dense_matmul(adjacency, users,
                                                     adjoint_a=True))
  return tf.stack(user_layers), tf.stack(item_layers)


def final_embeddings(layers: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
  """The mean over layers (LightGCN's final embedding) of the rows `indices`.

  Args:
    layers: `[K + 1, num_nodes, dim]`, one side of `propagate`'s output.
    indices: node indices of any shape.

  Returns:
    `indices.shape + [dim]`.
  """
  return tf.reduce_mean(tf.gather(layers, indices, axis=1), axis=0)


class _StepLayers:
  """Holds one step's propagation; a plain object, so Keras tracks nothing
  of the tensors it holds."""
  layers: Optional[tuple[tf.Tensor, tf.Tensor]] = None


class GraphEmbeddings(tf.keras.layers.Layer):
  """The layer-0 tables and their propagation over a bipartite graph.

  Both towers of a training step read the same propagation: the model's
  `compute_loss` computes it once inside `propagated()`, and a tower called
  outside it propagates for itself.
  """

  def __init__(self, graph: BipartiteGraph, dim: int, num_layers: int,
               **kwargs):
    super().__init__(**kwargs)
    num_users, num_items = graph.adjacency.dense_shape.numpy()
    # One initializer each: a shared unseeded one repeats its values.
    self.user_table = self.add_weight(
        name="user_embeddings", shape=[num_users, dim],
        initializer=tf.keras.initializers.RandomNormal(stddev=0.1))
    self.item_table = self.add_weight(
        name="item_embeddings", shape=[num_items, dim],
        initializer=tf.keras.initializers.RandomNormal(stddev=0.1))
    # Variables, not constants, keep the traced graphs small at any size.
    self.edges = tf.Variable(graph.adjacency.indices, trainable=False,
                             name="edges")
    self.edge_weights = tf.Variable(graph.adjacency.values, trainable=False,
                                    name="edge_weights")
    self.dense_shape = graph.adjacency.dense_shape
    self.user_degrees = tf.constant(graph.user_degrees)
    self.item_degrees = tf.constant(graph.item_degrees)
    self.num_layers = num_layers
    self._step = _StepLayers()

  def layers(self) -> tuple[tf.Tensor, tf.Tensor]:
    """`(user_layers, item_layers)`, `propagate`'s."""
    if self._step.layers is not None:
      return self._step.layers
    adjacency = tf.sparse.SparseTensor(self.edges, self.edge_weights,
                                       self.dense_shape)
    return propagate(adjacency, self.user_table, self.item_table,
                     self.num_layers)

  @contextlib.contextmanager
  def propagated(self):
    """Within it, every `layers()` call returns one propagation."""
    self._step.layers = self.layers()
    try:
      yield
    finally:
      self._step.layers = None


class FrozenTables(tf.Module):
  """Tables computed from `GraphEmbeddings` and stored once, for an export.

  Variables, not constants: a SavedModel's GraphDef holds at most 2 GB, and
  a large catalogue's tables exceed it.
  """

  def __init__(self, tables: Sequence[tf.Tensor]):
    super().__init__(name="frozen_graph_embeddings")
    self.tables = tuple(tf.Variable(table, trainable=False)
                        for table in tables)


def distinct_first_occurrences(indices: tf.Tensor, padding_index: int = 0
                               ) -> tf.Tensor:
  """`[batch, length]` True where an entry is not padding and not a repeat
  of an earlier entry of its row."""
  same = tf.equal(indices[:, :, tf.newaxis], indices[:, tf.newaxis, :])
  length = tf.shape(indices)[1]
  earlier = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
  earlier = tf.logical_and(earlier, tf.logical_not(
      tf.cast(tf.eye(length), tf.bool)))
  # same[b, j, i] with i < j: entry j repeats entry i.
  repeats = tf.reduce_any(tf.logical_and(same, earlier[tf.newaxis]), axis=2)
  return tf.logical_and(tf.not_equal(indices, padding_index),
                        tf.logical_not(repeats))


def user_layers_from_history(history: tf.Tensor, item_layers: tf.Tensor,
                             item_degrees: tf.Tensor, padding_index: int = 0
                             ) -> tf.Tensor:
  """A user's layer-1 to layer-K embeddings from their item neighbours.

  LightGCN's user update `e_u^(k) = sum_{i in N(u)} e_i^(k-1) /
  sqrt(|N(u)| |N(i)|)`, with `N(u)` the distinct items of `history` that
  are in the graph (`item_degrees > 0`). When `history` holds exactly the
  user's graph neighbours this is `propagate`'s user layers 1..K, so a
  served request rebuilds the trained user embedding; with newer items it
  applies the same update to the user's current neighbourhood.

  Args:
    history: `[batch, length]` item indices, `padding_index` where unused.
    item_layers: `[K + 1, num_items, dim]` from `propagate`; layers 0..K-1
      are read.
    item_degrees: `[num_items]` graph degrees.
    padding_index: the history's padding.

  Returns:
    `[K, batch, dim]`.
  """
  degrees = tf.gather(item_degrees, history)
  neighbours = tf.logical_and(distinct_first_occurrences(history, padding_index),
                              degrees > 0)
  weights = tf.cast(neighbours, tf.float32)
  count = tf.reduce_sum(weights, axis=1, keepdims=True)
  weights = tf.math.divide_no_nan(
      weights, tf.sqrt(count * tf.maximum(degrees, 1.0)))
  # [K, batch, length, dim] gathered, weighted and summed over the history.
  gathered = tf.gather(item_layers[:-1], history, axis=1)
  return tf.einsum("bl,kbld->kbd", weights, gathered)
