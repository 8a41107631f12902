"""Multi-head target attention with TWIN-style top-K selection.

A target (a candidate item, or the current position of a sequence) attends
over a user's history. TWIN (Chang et al., KDD 2023) splits this in two: a
cheap relevance score between the target and every history item selects the
top-K items, and exact multi-head attention runs over those K only. Here the
relevance is the attention logit summed over heads, computed either exactly
or from product-quantised keys (`models.layers.product_quantization`), and
selection can use a different view of the history than the attention itself
(SEMINAR selects on item embeddings, which are quantised once per item, and
attends over query-item pair embeddings).

Approximate relevance can rank two near-equal items in the wrong order, so it
may instead only shortlist `rerank_factor * K` items, whose exact relevance
then picks the top-K (FAISS' "refine" step): the exact relevance is then
needed for the shortlist only.

Selection comes in two equivalent forms. `MultiHeadTargetAttention.call`
masks: it computes every target's logits over the whole history and keeps
the top-K, which suits training and scoring many targets (a catalogue) over
short histories. `top_k_positions` / `rerank_positions` followed by
`attend_selected` gather: only the selected items (and, with a shortlist,
the shortlisted ones) are read and projected, which is what serves a few
targets over a long history. Both keep exactly K items, ties going to the
earliest position, so they agree.
"""

from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

_MASKED_LOGIT = -1e9


def causal_history_mask(padding_mask: tf.Tensor) -> tf.Tensor:
  """Mask where target position t sees history positions l <= t.

  Args:
    padding_mask: `[B, L]`, True at real positions.

  Returns:
    `[B, L, L]` bool: entry `[b, t, l]` is True when l <= t and l is real.
  """
  length = tf.shape(padding_mask)[1]
  lower = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
  return tf.logical_and(lower[tf.newaxis], padding_mask[:, tf.newaxis, :])


def top_k_mask(scores: tf.Tensor, mask: tf.Tensor, k: int) -> tf.Tensor:
  """Keeps the `k` highest-scoring allowed positions of every row.

  Args:
    scores: `[..., L]` relevance.
    mask: bool, broadcastable to `scores`; False positions are never kept.
    k: positions to keep; rows with fewer allowed positions keep them all.
      Of positions tied with the k-th score, the earliest are kept, as
      `tf.math.top_k` orders ties, so exactly `k` are.

  Returns:
    bool mask of `scores`' shape.
  """
  mask = tf.broadcast_to(mask, tf.shape(scores))
  if scores.shape[-1] is not None and k >= scores.shape[-1]:
    return mask
  masked = tf.where(mask, scores, _MASKED_LOGIT)
  k = tf.minimum(k, tf.shape(scores)[-1])
  kth = tf.math.top_k(masked, k=k, sorted=True).values[..., -1:]
  above = masked > kth
  tied = tf.equal(masked, kth)
  room = k - tf.reduce_sum(tf.cast(above, tf.int32), -1, keepdims=True)
  earliest_tied = tf.logical_and(
      tied, tf.cumsum(tf.cast(tied, tf.int32), axis=-1) <= room)
  return tf.logical_and(mask, tf.logical_or(above, earliest_tied))


def top_k_positions(scores: tf.Tensor, mask: tf.Tensor, k: int
                    ) -> tuple[tf.Tensor, tf.Tensor]:
  """The positions that `top_k_mask` keeps, as indices.

  Args:
    scores: `[..., L]` relevance, of static rank.
    mask: bool, broadcastable to `scores`; False positions are never kept.
    k: positions to keep.

  Returns:
    `[..., min(k, L)]` int32 positions, best first, and whether each is an
    allowed position (False fills rows with fewer than `k` allowed).
  """
  mask = tf.broadcast_to(mask, tf.shape(scores))
  length = scores.shape[-1]
  k = min(k, length) if length is not None else tf.minimum(
      k, tf.shape(scores)[-1])
  positions = tf.math.top_k(tf.where(mask, scores, _MASKED_LOGIT), k).indices
  return positions, tf.gather(mask, positions,
                              batch_dims=scores.shape.rank - 1)


def rerank_positions(approximate: tf.Tensor, mask: tf.Tensor,
                     exact_at: Callable[[tf.Tensor], tf.Tensor], k: int,
                     factor: int) -> tuple[tf.Tensor, tf.Tensor]:
  """Top-K positions shortlisted on approximate relevance.

  Args:
    approximate: `[..., L]` approximate (e.g. PQ) relevance.
    mask: bool, broadcastable to `approximate`.
    exact_at: maps `[..., S]` shortlisted positions to their exact
      relevance; called only when `factor > 1`.
    k: positions to select.
    factor: the shortlist holds `factor * k` positions; 1 selects on the
      approximate relevance alone.

  Returns:
    As `top_k_positions`: the positions that `MultiHeadTargetAttention`
    attends to given `approximate` as `selection_scores` and `factor` as
    its `rerank_factor`.
  """
  shortlist, allowed = top_k_positions(approximate, mask, factor * k)
  if factor == 1:
    return shortlist, allowed
  # In position order, so that exact ties go to the earliest position.
  order = tf.argsort(shortlist, axis=-1, stable=True)
  batch_dims = approximate.shape.rank - 1
  shortlist = tf.gather(shortlist, order, batch_dims=batch_dims)
  allowed = tf.gather(allowed, order, batch_dims=batch_dims)
  picks, picked_allowed = top_k_positions(exact_at(shortlist), allowed, k)
  return tf.gather(shortlist, picks, batch_dims=batch_dims), picked_allowed


class MultiHeadTargetAttention(tf.keras.layers.Layer):
  """Multi-head attention from targets to a history, over the top-K items.

  Args:
    num_heads: attention heads; `dim` must be divisible by it.
    dim: width of the projections and of the output.
    top_k: history items each target attends to; None attends to all.
    dropout: dropout on the attention weights.
    rerank_factor: with precomputed (approximate) `selection_scores`, those
      scores shortlist `rerank_factor * top_k` items and the exact relevance
      picks the top-K among them; 1 selects on the approximate scores alone.
  """

  def __init__(self, num_heads: int, dim: int, top_k: int | None = None,
               dropout: float = 0.0, rerank_factor: int = 1, **kwargs):
    super().__init__(**kwargs)
    if dim % num_heads:
      raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
    if rerank_factor < 1:
      raise ValueError(f"rerank_factor {rerank_factor} is below 1")
    self.num_heads = num_heads
    self.head_dim = dim // num_heads
    self.top_k = top_k
    self.rerank_factor = rerank_factor
    self.query_projection = tf.keras.layers.Dense(dim, use_bias=False)
    self.key_projection = tf.keras.layers.Dense(dim, use_bias=False)
    self.value_projection = tf.keras.layers.Dense(dim)
    self.output_projection = tf.keras.layers.Dense(dim)
    self.dropout = tf.keras.layers.Dropout(dropout)

  def selection_queries(self, targets: tf.Tensor) -> tf.Tensor:
    """`[..., D]` targets -> `[..., dim]` vectors whose dot product with
    `keys(history)` is the relevance summed over heads."""
    return self.query_projection(targets) / math.sqrt(self.head_dim)

  def keys(self, history: tf.Tensor) -> tf.Tensor:
    """`[..., D]` history vectors -> `[..., dim]` keys (what PQ encodes)."""
    return self.key_projection(history)

  def relevance(self, targets: tf.Tensor, history: tf.Tensor) -> tf.Tensor:
    """Exact `[B, N, L]` relevance of `[B, N, D]` (or shared `[N, D]`)
    targets to `[B, L, D]` history."""
    equation = "nd,bld->bnl" if targets.shape.rank == 2 else "bnd,bld->bnl"
    return tf.einsum(equation, self.selection_queries(targets),
                     self.keys(history))

  def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([shape[:-1],
                                    [self.num_heads, self.head_dim]], 0))

  def call(self, targets: tf.Tensor, history: tf.Tensor, mask: tf.Tensor,
           selection_history: tf.Tensor | None = None,
           selection_scores: tf.Tensor | None = None,
           training: bool = False) -> tf.Tensor:
    """Attends from every target to its top-K allowed history items.

    Args:
      targets: `[B, N, D]`, or `[N, D]` shared by every history (scored
        once, e.g. a catalogue or shared negatives).
      history: `[B, L, D]` keys and values of the attention.
      mask: `[B, L]` or `[B, N, L]` bool, True where a target may attend
        (padding and, for sequence targets, causality).
      selection_history: `[B, L, D']` history that relevance is computed on
        (same width as `history` through the shared key projection); defaults
        to `history`.
      selection_scores: `[B, N, L]` precomputed (e.g. PQ-approximate)
        relevance; selects alone when `rerank_factor` is 1, else shortlists
        for the exact relevance (on `selection_history` if given).
      training: enables dropout.

    Returns:
      `[B, N, dim]`; zeros for a target with no allowed item.
    """
    if mask.shape.rank == 2:
      mask = mask[:, tf.newaxis, :]
    queries = self._split_heads(self.query_projection(targets))
    keys = self._split_heads(self.keys(history))
    values = self._split_heads(self.value_projection(history))
    equation = ("nhd,blhd->bnhl" if targets.shape.rank == 2 else
                "bnhd,blhd->bnhl")
    logits = tf.einsum(equation, queries, keys) / math.sqrt(self.head_dim)
    if self.top_k is not None:
      if selection_scores is not None and self.rerank_factor > 1:
        mask = top_k_mask(selection_scores, mask,
                          self.rerank_factor * self.top_k)
        selection_scores = None
      if selection_scores is None:
        selection_scores = (tf.reduce_sum(logits, axis=2)
                            if selection_history is None else
                            self.relevance(targets, selection_history))
      mask = top_k_mask(selection_scores, mask, self.top_k)
    mask = tf.broadcast_to(mask, tf.shape(logits[:, :, 0]))[:, :, tf.newaxis]
    return self._output(tf.einsum(
        "bnhl,blhd->bnhd", self._weights(logits, mask, training), values))

  def attend_selected(self, targets: tf.Tensor, selected: tf.Tensor,
                      allowed: tf.Tensor) -> tf.Tensor:
    """Attention over history items already selected per target.

    Equal to `call` (at inference) when `selected` holds the history items
    at the positions that `top_k_positions` or `rerank_positions` return
    for the same relevance, but reads and projects K items per target
    instead of the whole history.

    Args:
      targets: `[B, N, D]`.
      selected: `[B, N, K, D]` each target's selected history items.
      allowed: `[B, N, K]`, False for filler positions.

    Returns:
      `[B, N, dim]`.
    """
    queries = self._split_heads(self.query_projection(targets))
    keys = self._split_heads(self.keys(selected))
    values = self._split_heads(self.value_projection(selected))
    logits = tf.einsum("bnhd,bnkhd->bnhk", queries, keys) / math.sqrt(
        self.head_dim)
    weights = self._weights(logits, allowed[:, :, tf.newaxis], False)
    return self._output(tf.einsum("bnhk,bnkhd->bnhd", weights, values))

  def _weights(self, logits: tf.Tensor, mask: tf.Tensor,
               training: bool) -> tf.Tensor:
    """Softmax over allowed positions; all zeros where none is."""
    weights = tf.nn.softmax(tf.where(mask, logits, _MASKED_LOGIT), axis=-1)
    return self.dropout(weights * tf.cast(mask, weights.dtype),
                        training=training)

  def _output(self, attended: tf.Tensor) -> tf.Tensor:
    """`[B, N, H, head_dim]` -> `[B, N, dim]`."""
    shape = tf.shape(attended)
    return self.output_projection(tf.reshape(
        attended, [shape[0], shape[1], self.num_heads * self.head_dim]))

  def get_config(self):
    # From the attributes: a caller may change `rerank_factor` after
    # construction (e.g. at export).
    return {**super().get_config(), "num_heads": self.num_heads,
            "dim": self.num_heads * self.head_dim, "top_k": self.top_k,
            "dropout": self.dropout.rate,
            "rerank_factor": self.rerank_factor}
