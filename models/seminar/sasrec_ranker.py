"""SASRec-class as a CTR ranker (a SEMINAR baseline).

SASRec (Kang & McAuley, ICDM 2018) reads only the most recent `max_length`
history items, through causal self-attention
(`attention.CausalSequenceEncoder`, the encoder of the product's
SASRec-class retrieval family), and scores a candidate by the dot product of
the last position's state with the candidate's embedding. It was trained with
binary cross-entropy against one sampled negative per positive, which is
this task's loss (`ctr_ranker.CtrRanker`); a learned bias calibrates the
dot product to click probabilities. Items are embedded from their id and
category, the features DIN and SIM read.
"""

from __future__ import annotations

import tensorflow as tf

from data import features
from models.layers import attention
from models.seminar import ctr_ranker
from models.seminar import item_features


def most_recent_items(history: tf.Tensor, count: int) -> tf.Tensor:
  """The last `count` real items of each history, still oldest first.

  Args:
    history: `[batch, width]` item indices, oldest first, right-padded with
      `features.PADDING_INDEX`.
    count: items kept.

  Returns:
    `[batch, count]`, oldest first, right-padded: a history of `n` items
    keeps items `max(n - count, 0) .. n - 1`.
  """
  lengths = tf.reduce_sum(
      tf.cast(tf.not_equal(history, features.PADDING_INDEX), tf.int32), 1)
  positions = (tf.maximum(lengths - count, 0)[:, tf.newaxis]
               + tf.range(count)[tf.newaxis])
  kept = tf.gather(history, tf.minimum(positions, tf.shape(history)[1] - 1),
                   batch_dims=1)
  return tf.where(positions < lengths[:, tf.newaxis], kept,
                  tf.zeros_like(kept))


class SasRecRanker(ctr_ranker.CtrRanker):
  """Causal self-attention over the recent history; dot product with the
  candidate.

  Args:
    catalogue: every item's features (`item_features.ItemFeatures`).
    embedding_dim: item embedding and model width.
    max_length: the most recent history items read (SASRec's n).
    num_blocks: self-attention blocks.
    num_heads: attention heads per block.
    dropout: input and in-block dropout.
  """

  def __init__(self, catalogue: item_features.ItemFeatures,
               embedding_dim: int, max_length: int = 50, num_blocks: int = 2,
               num_heads: int = 2, dropout: float = 0.2):
    super().__init__(name="sasrec")
    self.max_length = max_length
    self.items = item_features.ItemFeatureEmbedding(catalogue, embedding_dim)
    self.encoder = attention.CausalSequenceEncoder(
        max_length, embedding_dim, num_blocks, num_heads, dropout)
    self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

  def user_state(self, history: tf.Tensor,
                 training: bool = False) -> tf.Tensor:
    """`[batch, dim]` the encoder's output at the last recent item."""
    recent = most_recent_items(history, self.max_length)
    mask = tf.not_equal(recent, features.PADDING_INDEX)
    states = self.encoder(self.items(recent), mask, training=training)
    return attention.gather_last_position(
        states, tf.reduce_sum(tf.cast(mask, tf.int32), 1))

  def logits(self, batch, training=False):
    user = self.user_state(batch[ctr_ranker.HISTORY], training)
    candidate = self.items(batch[ctr_ranker.CANDIDATE])
    return tf.reduce_sum(user * candidate, -1) + self.bias
