"""Mixture of representation (MoR): K user vectors, and how they are scored.

GUIM (arXiv 2207.00750) gives every user K vectors instead of one so that
diverse interests do not collapse into their average. The paper does not state
how the K vectors are combined, so this module follows MIND (Li et al., CIKM
2019) and ComiRec (Cen et al., KDD 2020):

- `MultiInterestHeads` extracts the K vectors from an encoded sequence with
  ComiRec-SA's self-attentive pooling: each head k has its own attention
  distribution over the sequence positions.
- In training, `label_aware_attention` mixes the K vectors with weights
  `softmax(power * <v_k, target>)`, i.e. the softmax weights raised to the
  power `power` and renormalised. `power = 0` averages the vectors, `power = 1`
  is a plain softmax and `power -> inf` picks the vector closest to the target.
  `label_aware_scores` applies the same mix to every candidate as the target.
- In retrieval, `max_merge_scores` scores an item by its best vector,
  `max_k <v_k, item>`, which is what querying an ANN index with every vector
  and merging the results by score computes.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Masked positions get this logit; finite so that an all-padding row yields
# uniform weights instead of NaN.
_MASKED_LOGIT = -1e9


class MultiInterestHeads(tf.keras.layers.Layer):
  """ComiRec-SA self-attentive multi-interest extraction.

  `A = softmax_over_positions(W2 tanh(W1 H))` gives each of the K heads a
  distribution over the sequence; head k's vector is `sum_l A[k, l] H[l]`.

  Args:
    num_interests: K, the number of user vectors.
    hidden_units: width of `W1`.
  """

  def __init__(self, num_interests: int, hidden_units: int, **kwargs):
    super().__init__(**kwargs)
    if num_interests < 1:
      raise ValueError(f"num_interests must be >= 1, got {num_interests}")
    self._config = {"num_interests": num_interests, "hidden_units": hidden_units}
    self.hidden = tf.keras.layers.Dense(hidden_units, activation="tanh")
    self.head_logits = tf.keras.layers.Dense(num_interests, use_bias=False)

  def call(self, sequence: tf.Tensor, padding_mask: tf.Tensor) -> tf.Tensor:
    """Pools `sequence` into K vectors.

    Args:
      sequence: `[batch, length, dim]`.
      padding_mask: `[batch, length]`, True at real positions.

    Returns:
      `[batch, K, dim]`.
    """
    logits = self.head_logits(self.hidden(sequence))  # [batch, length, K]
    logits = tf.where(padding_mask[:, :, tf.newaxis], logits, _MASKED_LOGIT)
    weights = tf.nn.softmax(logits, axis=1)
    return tf.einsum("blk,bld->bkd", weights, sequence)

  def get_config(self):
    return {**super().get_config(), **self._config}


def label_aware_attention(interests: tf.Tensor, targets: tf.Tensor,
                          power: float) -> tf.Tensor:
  """Mixes the K interest vectors by their affinity with the target item.

  Args:
    interests: `[batch, K, dim]`.
    targets: `[batch, dim]`, the positive item of each row.
    power: sharpness of the weights; `math.inf` selects the best vector.

  Returns:
    `[batch, dim]`, `sum_k w_k v_k` with `w = softmax(power * <v_k, target>)`.
  """
  affinity = tf.einsum("bkd,bd->bk", interests, targets)
  if math.isinf(power):
    weights = tf.one_hot(tf.argmax(affinity, axis=1), tf.shape(interests)[1],
                         dtype=interests.dtype)
  else:
    weights = tf.nn.softmax(power * affinity, axis=1)
  return tf.einsum("bk,bkd->bd", weights, interests)


def label_aware_scores(interests: tf.Tensor, candidates: tf.Tensor,
                       power: float) -> tf.Tensor:
  """Scores every candidate by the label-aware mix with it as the target.

  Args:
    interests: `[batch, K, dim]`.
    candidates: `[num_candidates, dim]`.
    power: as in `label_aware_attention`.

  Returns:
    `[batch, num_candidates]`, `sum_k w_k <v_k, c>` with
    `w = softmax(power * <v_k, c>)`; the max over k when `power` is inf.
  """
  scores = tf.einsum("bkd,nd->bkn", interests, candidates)
  if math.isinf(power):
    return tf.reduce_max(scores, axis=1)
  return tf.reduce_sum(tf.nn.softmax(power * scores, axis=1) * scores, axis=1)


def max_merge_scores(interests: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
  """Scores every candidate by its best-matching interest vector.

  Args:
    interests: `[batch, K, dim]`.
    candidates: `[num_candidates, dim]`.

  Returns:
    `[batch, num_candidates]`, `max_k <interests[:, k], candidate>`.
  """
  return tf.reduce_max(tf.einsum("bkd,nd->bkn", interests, candidates), axis=1)
