"""Merging the neighbours of a user's K query vectors into one top-k list.

A multi-vector (multi-interest) model embeds a user as K unit vectors. Its
exact score for an item is the max over the K dot products (MIND, ComiRec).
With an ANN index, each vector fetches its own N neighbours and the K lists
are merged per user:

- `max` (default): every distinct item once, ranked by its best score over
  the vectors. With exact per-vector search and N >= k this is exactly the
  top k of the max-over-K score: an item in that top k ranks within the top
  k of the vector that attains its max.
- `round_robin`: every vector's first neighbour, then every vector's second,
  ..., vectors in order, skipping items already taken. Each interest gets an
  equal share of the list whatever the score scales; `scores` still hold the
  max over vectors, so they need not decrease down the list.

The merge runs in TF, so the same code serves the retrieval server (eager)
and the ScaNN-layer SavedModel (graph).
"""

from __future__ import annotations

import tensorflow as tf

MAX = "max"
ROUND_ROBIN = "round_robin"
MERGE_RULES = (MAX, ROUND_ROBIN)
PADDING_ID = ""


def check_merge_rule(rule: str) -> None:
  """Raises ValueError for a rule other than those in `MERGE_RULES`."""
  if rule not in MERGE_RULES:
    raise ValueError(f"unknown merge rule {rule!r}; expected one of "
                     f"{list(MERGE_RULES)}")


def _priority(flat_scores: tf.Tensor, num_vectors: tf.Tensor,
              depth: tf.Tensor, batch_size: tf.Tensor,
              rule: str) -> tf.Tensor:
  """Per candidate, where the rule puts it: lower comes first."""
  if rule == MAX:
    return -flat_scores
  rank_in_list = tf.tile(tf.range(depth), [batch_size * num_vectors])
  vector = tf.tile(tf.repeat(tf.range(num_vectors), depth), [batch_size])
  return tf.cast(rank_in_list * num_vectors + vector, flat_scores.dtype)


# Compiled once per rule and shape family: run eagerly, per request, its
# dozens of ops cost far more than the ScaNN search itself.
@tf.function(reduce_retracing=True)
def merge_neighbours(item_ids: tf.Tensor, scores: tf.Tensor, k,
                     rule: str = MAX) -> tuple[tf.Tensor, tf.Tensor]:
  """Merges each user's per-vector neighbour lists into one top-k list.

  Args:
    item_ids: `[batch, vectors, n]` string ids, each vector's list best
      first; `PADDING_ID` marks an empty slot.
    scores: `[batch, vectors, n]` float scores of `item_ids`.
    k: items to return per user, at most `vectors * n`; pass a scalar int32
      tensor rather than a Python int, which retraces for every value.
    rule: one of `MERGE_RULES`, see the module docstring.

  Returns:
    `(item_ids, scores)`, `[batch, k]`: distinct items in the rule's order,
    each with its max score over the vectors; rows are padded with
    `PADDING_ID` and -inf when fewer than k distinct items were found.
  """
  check_merge_rule(rule)
  item_ids = tf.convert_to_tensor(item_ids, tf.string)
  scores = tf.convert_to_tensor(scores, tf.float32)
  shape = tf.shape(item_ids)
  batch_size, num_vectors, depth = shape[0], shape[1], shape[2]
  width = num_vectors * depth
  flat_ids = tf.reshape(item_ids, [-1])
  flat_scores = tf.reshape(scores, [-1])
  valid = tf.not_equal(flat_ids, PADDING_ID)

  # One segment per (user, item): ids are coded, then offset by the row.
  _, id_codes = tf.unique(flat_ids, out_idx=tf.int64)
  rows = tf.repeat(tf.range(batch_size, dtype=tf.int64), width)
  distinct, segments = tf.unique(
      rows * tf.size(flat_ids, out_type=tf.int64) + id_codes, out_idx=tf.int64)
  num_segments = tf.size(distinct, out_type=tf.int64)
  best_scores = tf.gather(
      tf.math.unsorted_segment_max(flat_scores, segments, num_segments),
      segments)

  # Position in one stable order of all candidates: the first occurrence of
  # an item by the rule's priority is the one kept.
  priority = tf.where(valid, _priority(flat_scores, num_vectors, depth,
                                       batch_size, rule), float("inf"))
  position = tf.math.invert_permutation(
      tf.argsort(priority, stable=True, direction="ASCENDING"))
  first = tf.gather(
      tf.math.unsorted_segment_min(position, segments, num_segments),
      segments)
  keep = tf.logical_and(valid, tf.equal(position, first))

  unkept = tf.int32.min
  order_key = tf.reshape(tf.where(keep, -position, unkept),
                         [batch_size, width])
  top_keys, top = tf.math.top_k(order_key, k=k)
  found = top_keys > unkept
  merged_ids = tf.gather(tf.reshape(flat_ids, [batch_size, width]), top,
                         batch_dims=1)
  merged_scores = tf.gather(tf.reshape(best_scores, [batch_size, width]), top,
                            batch_dims=1)
  return (tf.where(found, merged_ids, PADDING_ID),
          tf.where(found, merged_scores, float("-inf")))
