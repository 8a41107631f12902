"""InfoNCE: the contrastive loss shared by GUIM, COURIER and SEMINAR.

Row i of `queries` is paired with row i of `candidates`; every other candidate
in the batch (plus any extra negatives) is a negative. With `candidate_log_q`,
each candidate's logit is reduced by the log of its sampling probability
(Yi et al., RecSys 2019), which removes the popularity bias of in-batch
negatives. A negative with its row's positive id (an accidental hit, e.g. a
popular item twice in one batch) is masked out rather than pushed away from
its own query: `softmax_losses` does it for any layout of candidates.
"""

from __future__ import annotations

import tensorflow as tf


def scaled_logits(scores: tf.Tensor, temperature: float,
                  candidate_log_q: tf.Tensor | None = None) -> tf.Tensor:
  """Similarity scores over the temperature, logQ-corrected.

  Args:
    scores: `[..., N]` similarities of each row to N candidates.
    temperature: divides the scores.
    candidate_log_q: optional `[N]` log sampling probabilities.

  Returns:
    `[..., N]` logits.
  """
  logits = scores / temperature
  if candidate_log_q is not None:
    logits -= tf.cast(candidate_log_q, logits.dtype)
  return logits


def info_nce_logits(queries: tf.Tensor, candidates: tf.Tensor,
                    temperature: float,
                    candidate_log_q: tf.Tensor | None = None) -> tf.Tensor:
  """Scaled dot-product logits, logQ-corrected.

  Args:
    queries: `[B, D]`.
    candidates: `[N, D]`, N >= B; the first B are the positives of the B
      queries, the rest extra negatives.
    temperature: divides the dot products.
    candidate_log_q: optional `[N]` log sampling probabilities.

  Returns:
    `[B, N]` logits.
  """
  return scaled_logits(tf.matmul(queries, candidates, transpose_b=True),
                       temperature, candidate_log_q)


def softmax_losses(logits: tf.Tensor, positive_positions: tf.Tensor,
                   positive_ids: tf.Tensor | None = None,
                   candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
  """Per-row softmax cross-entropy of each row's positive candidate.

  Args:
    logits: `[..., N]`.
    positive_positions: `[...]` int, the column of each row's positive.
    positive_ids: optional `[...]` item id of each row's positive.
    candidate_ids: with `positive_ids`, the ids of the N candidates,
      broadcastable to `logits` (`[N]` when the rows share them). A
      candidate other than the positive with the positive's id is masked.

  Returns:
    `[...]` losses.
  """
  positive_positions = tf.cast(positive_positions, tf.int32)
  if candidate_ids is not None:
    accidental_hit = tf.equal(positive_ids[..., tf.newaxis], candidate_ids)
    positive = tf.cast(tf.one_hot(positive_positions, tf.shape(logits)[-1]),
                       tf.bool)
    logits = tf.where(accidental_hit & ~positive, logits.dtype.min, logits)
  return tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=positive_positions, logits=logits)


def in_batch_loss(logits: tf.Tensor,
                  candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
  """Mean InfoNCE loss of `[B, N]` logits whose positives are diagonal.

  Args:
    logits: `[B, N]`, N >= B; column i < B is row i's positive.
    candidate_ids: optional `[N]` ids; accidental hits are masked.

  Returns:
    Scalar loss.
  """
  batch_size = tf.shape(logits)[0]
  positive_ids = None if candidate_ids is None else candidate_ids[:batch_size]
  return tf.reduce_mean(softmax_losses(logits, tf.range(batch_size),
                                       positive_ids, candidate_ids))


def info_nce_loss(queries: tf.Tensor, candidates: tf.Tensor, temperature: float,
                  candidate_log_q: tf.Tensor | None = None,
                  candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
  """Mean InfoNCE loss on dot products; positives on the diagonal.

  Args:
    queries: `[B, D]`.
    candidates: `[N, D]`, positives first.
    temperature: softmax temperature.
    candidate_log_q: optional `[N]` log sampling probabilities.
    candidate_ids: optional `[N]` ids; accidental hits are masked.

  Returns:
    Scalar loss.
  """
  return in_batch_loss(
      info_nce_logits(queries, candidates, temperature, candidate_log_q),
      candidate_ids)


def cosine_info_nce_loss(queries: tf.Tensor, candidates: tf.Tensor,
                         temperature: float,
                         candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
  """`info_nce_loss` on cosine similarities: both sides L2-normalised."""
  return info_nce_loss(tf.math.l2_normalize(queries, -1),
                       tf.math.l2_normalize(candidates, -1), temperature,
                       candidate_ids=candidate_ids)
