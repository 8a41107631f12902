"""Graph matching layers for GMN (Neural Graph Matching, arXiv 2408.00346).

A user's dual graph is two bipartite neighbourhoods sharing the user: the
videos they watched (left) and the items they interacted with (right). The
layers here match one neighbour set against the other:

- `CrossGraphAttention`: the cross-graph matching step of Li et al. 2019
  (Graph Matching Networks, ICML): each node attends over the other side's
  nodes, the message is the attention-weighted difference
  `mu_i = sum_j a_ij (h_i - h_j)`, and a per-side update MLP reads `[h_i, mu_i]`
  with a residual connection. Attention is a masked softmax over the other
  side, or a Sinkhorn transport plan (a soft one-to-one matching).
- `PreferenceExtraction`: K learnable preference queries per side attend over
  that side's nodes (multi-interest extraction); the preferences are matched
  against each other with another `CrossGraphAttention`.
- `GatedSetPooling` / `BiLevelAggregator`: the gated-sum graph aggregator of
  Li et al. 2019, applied to each node set and each preference set, then
  concatenated.

Every set comes with a boolean mask (True at real entries), so padded
neighbours never contribute, and every output is permutation-equivariant over
the entries of a set (or invariant, for pooling).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from models.layers import mlp

MATCHING_SOFTMAX = "softmax"
MATCHING_SINKHORN = "sinkhorn"
MATCHING_MODES = (MATCHING_SOFTMAX, MATCHING_SINKHORN)
# Stands in for log(0) inside log-space normalisation; finite so that fully
# padded rows stay NaN-free.
_LOG_ZERO = -1e9


def masked_softmax(logits: tf.Tensor, mask: tf.Tensor, axis: int = -1) -> tf.Tensor:
  """Softmax over `axis` restricted to `mask`; all-masked slices give zeros.

  Args:
    logits: scores of any shape.
    mask: boolean, broadcastable to `logits`; True where an entry is allowed.
    axis: the axis to normalise over.

  Returns:
    Weights shaped like `logits`, zero where masked.
  """
  mask = tf.broadcast_to(mask, tf.shape(logits))
  weights = tf.nn.softmax(tf.where(mask, logits, _LOG_ZERO), axis=axis)
  return weights * tf.cast(mask, weights.dtype)


def sinkhorn(logits: tf.Tensor, row_mask: tf.Tensor, column_mask: tf.Tensor,
             num_iterations: int = 20) -> tf.Tensor:
  """Entropic transport plan between two masked sets (Sinkhorn-Knopp, log space).

  The plan has the shape of `logits` and marginals: every real row sums to 1
  and every real column to `n / m`, where `n` and `m` are the numbers of real
  rows and columns, so the total mass matches. With `n == m` the plan is
  doubly stochastic, a soft permutation. Iterations end with the row step, so
  rows sum to 1 exactly and columns approximately.

  Args:
    logits: `[batch, n_max, m_max]` matching scores.
    row_mask: `[batch, n_max]` boolean, True at real rows.
    column_mask: `[batch, m_max]` boolean, True at real columns.
    num_iterations: alternating column/row normalisations.

  Returns:
    `[batch, n_max, m_max]` plan, zero at padded rows and columns.
  """
  mask = row_mask[:, :, tf.newaxis] & column_mask[:, tf.newaxis, :]
  num_rows = tf.reduce_sum(tf.cast(row_mask, logits.dtype), axis=1)
  num_columns = tf.reduce_sum(tf.cast(column_mask, logits.dtype), axis=1)
  log_column_mass = tf.math.log(
      tf.maximum(num_rows, 1.0) / tf.maximum(num_columns, 1.0))
  log_column_mass = log_column_mass[:, tf.newaxis, tf.newaxis]

  def normalise_rows(log_plan):
    log_plan = log_plan - tf.reduce_logsumexp(log_plan, axis=2, keepdims=True)
    return tf.where(mask, log_plan, _LOG_ZERO)

  log_plan = normalise_rows(tf.where(mask, logits, _LOG_ZERO))
  for _ in range(num_iterations):
    log_plan = (log_plan - tf.reduce_logsumexp(log_plan, axis=1, keepdims=True)
                + log_column_mass)
    log_plan = normalise_rows(tf.where(mask, log_plan, _LOG_ZERO))
  return tf.exp(log_plan) * tf.cast(mask, logits.dtype)


class CrossGraphAttention(tf.keras.layers.Layer):
  """Cross-graph matching between two node sets (Li et al. 2019, eq. 5-7).

  Similarity is the scaled dot product `<h_i, h_j> / sqrt(dim)`. Left nodes
  attend over right nodes and right nodes over left nodes; with Sinkhorn both
  directions are read off one transport plan (rows for left, columns
  rescaled to sum 1 for right). A node whose other side is empty gets a zero
  message. Each side's update is `h + mlp([h, mu])`, so node types keep
  separate update networks.

  Args:
    dim: node width (the inputs' last dimension) and the update MLP's output.
    matching: "softmax" or "sinkhorn".
    sinkhorn_iterations: iterations when `matching == "sinkhorn"`.
  """

  def __init__(self, dim: int, matching: str = MATCHING_SOFTMAX,
               sinkhorn_iterations: int = 20, **kwargs):
    super().__init__(**kwargs)
    if matching not in MATCHING_MODES:
      raise ValueError(f"matching must be one of {MATCHING_MODES}, got {matching!r}")
    self._config = {"dim": dim, "matching": matching,
                    "sinkhorn_iterations": sinkhorn_iterations}
    self.left_update = mlp.mlp((2 * dim, dim), "left_update")
    self.right_update = mlp.mlp((2 * dim, dim), "right_update")

  def attention(self, left: tf.Tensor, left_mask: tf.Tensor, right: tf.Tensor,
                right_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Left->right `[batch, n, m]` and right->left `[batch, m, n]` weights."""
    scale = tf.math.rsqrt(tf.cast(tf.shape(left)[-1], left.dtype))
    logits = tf.einsum("bnd,bmd->bnm", left, right) * scale
    if self._config["matching"] == MATCHING_SINKHORN:
      plan = sinkhorn(logits, left_mask, right_mask,
                      self._config["sinkhorn_iterations"])
      column_mass = tf.reduce_sum(plan, axis=1, keepdims=True)
      left_to_right = plan
      right_to_left = tf.transpose(tf.math.divide_no_nan(plan, column_mass),
                                   [0, 2, 1])
    else:
      pair_mask = left_mask[:, :, tf.newaxis] & right_mask[:, tf.newaxis, :]
      left_to_right = masked_softmax(logits, pair_mask, axis=2)
      right_to_left = tf.transpose(masked_softmax(logits, pair_mask, axis=1),
                                   [0, 2, 1])
    return left_to_right, right_to_left

  def call(self, left: tf.Tensor, left_mask: tf.Tensor, right: tf.Tensor,
           right_mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Matches the two sets.

    Args:
      left: `[batch, n, dim]` left nodes.
      left_mask: `[batch, n]` boolean, True at real left nodes.
      right: `[batch, m, dim]` right nodes.
      right_mask: `[batch, m]` boolean, True at real right nodes.

    Returns:
      Updated `(left, right)`, zero at padded nodes.
    """
    left_to_right, right_to_left = self.attention(left, left_mask, right,
                                                  right_mask)
    return (self._update(self.left_update, left, left_mask, left_to_right, right),
            self._update(self.right_update, right, right_mask, right_to_left, left))

  @staticmethod
  def _update(update, nodes, mask, weights, other):
    # mu_i = sum_j a_ij (h_i - h_j), written so that no [b, n, m, d] tensor exists.
    message = (tf.reduce_sum(weights, axis=2, keepdims=True) * nodes
               - tf.matmul(weights, other))
    updated = nodes + update(tf.concat([nodes, message], axis=-1))
    return updated * tf.cast(mask, updated.dtype)[:, :, tf.newaxis]

  def get_config(self):
    return {**super().get_config(), **self._config}


class PreferenceExtraction(tf.keras.layers.Layer):
  """K learnable preference queries attending over one side's nodes.

  Preference k is `sum_n softmax_n(<q_k, W h_n> / sqrt(dim)) h_n`: a weighted
  mean of real nodes, as in multi-interest extractors with learned queries.
  An empty side gives zero preferences and a False preference mask.

  Args:
    num_preferences: K.
    dim: node width.
  """

  def __init__(self, num_preferences: int, dim: int, **kwargs):
    super().__init__(**kwargs)
    self._config = {"num_preferences": num_preferences, "dim": dim}
    self.queries = self.add_weight(
        name="queries", shape=(num_preferences, dim),
        initializer=tf.keras.initializers.RandomNormal(stddev=dim ** -0.5))
    self.key_projection = tf.keras.layers.Dense(dim, use_bias=False)

  def call(self, nodes: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Extracts preferences.

    Args:
      nodes: `[batch, n, dim]`.
      mask: `[batch, n]` boolean, True at real nodes.

    Returns:
      `[batch, K, dim]` preferences and their `[batch, K]` boolean mask.
    """
    scale = tf.math.rsqrt(tf.cast(tf.shape(nodes)[-1], nodes.dtype))
    logits = tf.einsum("kd,bnd->bkn", self.queries,
                       self.key_projection(nodes)) * scale
    weights = masked_softmax(logits, mask[:, tf.newaxis, :], axis=2)
    preferences = tf.matmul(weights, nodes)
    has_nodes = tf.reduce_any(mask, axis=1, keepdims=True)
    num_preferences = self._config["num_preferences"]
    return preferences, tf.tile(has_nodes, [1, num_preferences])

  def get_config(self):
    return {**super().get_config(), **self._config}


class GatedSetPooling(tf.keras.layers.Layer):
  """Li et al. 2019's graph aggregator: `sum_i sigmoid(gate(h_i)) * value(h_i)`.

  Args:
    dim: output width.
  """

  def __init__(self, dim: int, **kwargs):
    super().__init__(**kwargs)
    self._config = {"dim": dim}
    self.gate = tf.keras.layers.Dense(dim, activation="sigmoid")
    self.value = tf.keras.layers.Dense(dim)

  def call(self, nodes: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Pools `[batch, n, dim_in]` over real nodes to `[batch, dim]`."""
    gated = self.gate(nodes) * self.value(nodes)
    return tf.reduce_sum(gated * tf.cast(mask, gated.dtype)[:, :, tf.newaxis],
                         axis=1)

  def get_config(self):
    return {**super().get_config(), **self._config}


class BiLevelAggregator(tf.keras.layers.Layer):
  """Pools node-level and preference-level sets and concatenates them.

  Each set has its own `GatedSetPooling`, so the video and item sides and the
  two levels are weighted independently.

  Args:
    num_node_sets: node-level sets passed to `call` (0, 1 or 2).
    num_preference_sets: preference-level sets passed to `call`.
    dim: width of each pooled set.
  """

  def __init__(self, num_node_sets: int, num_preference_sets: int, dim: int,
               **kwargs):
    super().__init__(**kwargs)
    if num_node_sets + num_preference_sets == 0:
      raise ValueError("BiLevelAggregator needs at least one set")
    self._config = {"num_node_sets": num_node_sets,
                    "num_preference_sets": num_preference_sets, "dim": dim}
    self.node_pooling = [GatedSetPooling(dim, name=f"node_pooling_{i}")
                         for i in range(num_node_sets)]
    self.preference_pooling = [GatedSetPooling(dim, name=f"preference_pooling_{i}")
                               for i in range(num_preference_sets)]

  def call(self, node_sets: Sequence[tuple[tf.Tensor, tf.Tensor]],
           preference_sets: Sequence[tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
    """Aggregates the user.

    Args:
      node_sets: `(nodes [batch, n, dim], mask [batch, n])` pairs.
      preference_sets: `(preferences [batch, K, dim], mask [batch, K])` pairs.

    Returns:
      `[batch, (num_node_sets + num_preference_sets) * dim]`.
    """
    if (len(node_sets) != len(self.node_pooling)
        or len(preference_sets) != len(self.preference_pooling)):
      raise ValueError(
          f"expected {len(self.node_pooling)} node and "
          f"{len(self.preference_pooling)} preference sets, got "
          f"{len(node_sets)} and {len(preference_sets)}")
    pooled = [pool(values, mask) for pool, (values, mask) in
              zip(self.node_pooling + self.preference_pooling,
                  list(node_sets) + list(preference_sets))]
    return tf.concat(pooled, axis=-1)

  def get_config(self):
    return {**super().get_config(), **self._config}
