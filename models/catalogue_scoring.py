"""Scoring the whole catalogue in chunks, with exact ranks and top k.

A request's memory does not grow with the catalogue: `chunked_top_k` and
`chunked_target_ranks` fold a `ChunkScorer` over `[batch, items]` blocks of
at most `CELLS_PER_CHUNK` scores, masking unservable and already-seen items
the same way in every chunk.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from models.layers import mixture_of_representation

_UNAVAILABLE_SCORE = -1e9


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


# Scores (and masks) a request holds at once: `[batch, items]` blocks of at
# most this many cells, 16 MiB of float32, whatever the catalogue's size.
CELLS_PER_CHUNK = 1 << 22

# `(start, size) -> [batch, size]` float32 scores of item indices
# `start...start + size - 1`; every call for a range must give the same bits.
ChunkScorer = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _fold_chunks(num_items: tf.Tensor, items_per_chunk: tf.Tensor,
                 step: Callable, initial):
  """Folds `step(start, size, state) -> state` over the catalogue in order.

  One chunk at a time (`parallel_iterations=1`): running them side by side
  would hold several chunks' scores and undo the bound.
  """
  def body(start, state):
    size = tf.minimum(items_per_chunk, num_items - start)
    return start + size, step(start, size, state)

  _, state = tf.while_loop(lambda start, _: start < num_items, body,
                           (tf.zeros([], tf.int64), initial),
                           parallel_iterations=1)
  return state


def _available_in_chunk(servable: tf.Tensor, seen_pairs: tf.Tensor,
                        start: tf.Tensor, size: tf.Tensor,
                        batch_size: tf.Tensor) -> tf.Tensor:
  """`[batch, size]` mask of chunk `start...`: servable and not seen.

  Args:
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` (row, item index) pairs each row has seen.
    start: the chunk's first item index.
    size: its number of items.
    batch_size: rows of the request.
  """
  items = seen_pairs[:, 1]
  in_chunk = tf.logical_and(items >= start, items < start + size)
  pairs = tf.boolean_mask(seen_pairs, in_chunk) - tf.stack(
      [tf.zeros([], tf.int64), start])
  seen = tf.tensor_scatter_nd_update(
      tf.zeros(tf.stack([tf.cast(batch_size, tf.int64), size]), tf.bool),
      pairs, tf.ones(tf.shape(pairs)[:1], tf.bool))
  return tf.logical_and(servable[start:start + size][tf.newaxis, :],
                        tf.logical_not(seen))


def _target_scores(scorers: Sequence[ChunkScorer], num_items: tf.Tensor,
                   items_per_chunk: tf.Tensor,
                   target: tf.Tensor) -> list[tf.Tensor]:
  """`[batch]` score of each row's target, by each of `scorers`.

  Taken from the very chunk scores the target's competitors are compared
  with, not from a separate product whose rounding might differ (and turn a
  tie into a win or a loss). Only the chunks holding some target are scored.
  """
  chunks = tf.unique(target // items_per_chunk).y

  def body(i, scores):
    start = chunks[i] * items_per_chunk
    size = tf.minimum(items_per_chunk, num_items - start)
    in_chunk = tf.equal(target // items_per_chunk, chunks[i])
    offset = tf.where(in_chunk, target - start, tf.zeros_like(target))
    return i + 1, [tf.where(in_chunk, tf.gather(score_chunk(start, size),
                                                offset, batch_dims=1), score)
                   for score_chunk, score in zip(scorers, scores)]

  _, scores = tf.while_loop(
      lambda i, _: i < tf.size(chunks), body,
      (tf.zeros([], tf.int32),
       [tf.zeros(tf.shape(target), tf.float32)] * len(scorers)),
      parallel_iterations=1)
  return scores


def chunked_target_ranks(scorers: Sequence[ChunkScorer], servable: tf.Tensor,
                         seen_pairs: tf.Tensor, target: tf.Tensor,
                         items_per_chunk: tf.Tensor) -> list[tf.Tensor]:
  """0-based rank of each row's target among the available items, by scorer.

  The protocol of `offline_eval.protocols.full_ranking`: the competitors are
  the servable items the row has not seen, the target aside; ties count
  against the target (a constant scorer ranks it last), and a target that is
  not servable gets the worst rank. The catalogue is scored a chunk at a
  time, so that a request never holds `[batch, num_items]`; the ranks are
  those of scoring it at once from the same scores. A matmul's last bit may
  depend on its shape, so against one chunk an item within an ulp of the
  target may fall on the other side.

  Args:
    scorers: the item scorers to rank the target by.
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` int64 (row, item index) pairs the rows have seen;
      a seen target still competes for its own rank.
    target: `[batch]` int64 item index of each row's target.
    items_per_chunk: items scored at once.

  Returns:
    `[batch]` float32 ranks, one tensor per scorer.
  """
  num_items = tf.shape(servable, out_type=tf.int64)[0]
  items_per_chunk = tf.cast(items_per_chunk, tf.int64)
  batch_size = tf.shape(target)[0]
  target_scores = _target_scores(scorers, num_items, items_per_chunk,
                                 target)

  def count(mask):
    return tf.reduce_sum(tf.cast(mask, tf.int64), axis=1)

  def step(start, size, state):
    ahead, competing = state
    competitors = tf.logical_and(
        _available_in_chunk(servable, seen_pairs, start, size, batch_size),
        tf.not_equal(tf.range(start, start + size)[tf.newaxis, :],
                     target[:, tf.newaxis]))
    ahead = [total + count(tf.logical_and(
        competitors, score_chunk(start, size) >= target_score[:, tf.newaxis]))
             for total, score_chunk, target_score in zip(
                 ahead, scorers, target_scores)]
    return ahead, competing + count(competitors)

  ahead, competing = _fold_chunks(
      num_items, items_per_chunk, step,
      ([tf.zeros([batch_size], tf.int64)] * len(target_scores),
       tf.zeros([batch_size], tf.int64)))
  target_servable = tf.gather(servable, target)
  return [tf.cast(tf.where(target_servable, total, competing), tf.float32)
          for total in ahead]


def chunked_top_k(score_chunk: ChunkScorer, servable: tf.Tensor,
                  seen_pairs: tf.Tensor, batch_size: tf.Tensor, k: int,
                  items_per_chunk: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """The `k` best available item indices per row, a chunk at a time.

  Each chunk's top `k` merges into the running top `k`. Unavailable items
  score `_UNAVAILABLE_SCORE` and come last; ties go to the lower item index,
  as a `tf.math.top_k` over the whole catalogue would order them.

  Args:
    score_chunk: the item scorer.
    servable: `[num_items]` whether each item index may be recommended.
    seen_pairs: `[n, 2]` int64 (row, item index) pairs to leave out.
    batch_size: rows of the request.
    k: items to return; at most the catalogue's size are.
    items_per_chunk: items scored at once.

  Returns:
    `[batch, min(k, num_items)]` scores, best first, and their item indices.
  """
  num_items = tf.shape(servable, out_type=tf.int64)[0]

  def step(start, size, state):
    best_scores, best_indices = state
    scores = tf.where(
        _available_in_chunk(servable, seen_pairs, start, size, batch_size),
        score_chunk(start, size), _UNAVAILABLE_SCORE)
    chunk_scores, chunk_positions = tf.math.top_k(
        scores, k=tf.cast(tf.minimum(size, k), tf.int32))
    # The running best come first, so among equal scores the lower (earlier)
    # item index wins.
    merged_scores = tf.concat([best_scores, chunk_scores], axis=1)
    merged_indices = tf.concat(
        [best_indices, start + tf.cast(chunk_positions, tf.int64)], axis=1)
    best_scores, positions = tf.math.top_k(merged_scores, k=k)
    return best_scores, tf.gather(merged_indices, positions, batch_dims=1)

  # Placeholders below every real score: any item displaces them.
  best_scores, best_indices = _fold_chunks(
      num_items, tf.cast(items_per_chunk, tf.int64), step,
      (tf.fill(tf.stack([batch_size, k]), tf.constant(-np.inf, tf.float32)),
       tf.zeros(tf.stack([batch_size, k]), tf.int64)))
  kept = tf.minimum(num_items, k)
  return best_scores[:, :kept], best_indices[:, :kept]

