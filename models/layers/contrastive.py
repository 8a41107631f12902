"""InfoNCE: the contrastive loss shared by GUIM, COURIER and SEMINAR.

Row i of `queries` is paired with row i of `candidates`; every other candidate
in the batch (plus any extra negatives) is a negative. With `candidate_log_q`,
each candidate's logit is reduced by the log of its sampling probability
(Yi et al., RecSys 2019), which removes the popularity bias of in-batch
negatives.
"""

from __future__ import annotations

import tensorflow as tf


def info_nce_logits(queries: tf.Tensor, candidates: tf.Tensor,
                    temperature: float,
                    candidate_log_q: tf.Tensor | None = None) -> tf.Tensor:
  """Scaled similarity logits, logQ-corrected.

  Args:
    queries: `[B, D]`.
    candidates: `[N, D]`, N >= B; the first B are the positives of the B
      queries, the rest extra negatives.
    temperature: divides the dot products.
    candidate_log_q: optional `[N]` log sampling probabilities.

  Returns:
    `[B, N]` logits.
  """
  logits = tf.matmul(queries, candidates, transpose_b=True) / temperature
  if candidate_log_q is not None:
    logits -= tf.cast(candidate_log_q, logits.dtype)[tf.newaxis, :]
  return logits


def info_nce_loss(queries: tf.Tensor, candidates: tf.Tensor, temperature: float,
                  candidate_log_q: tf.Tensor | None = None,
                  candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
  """Mean InfoNCE loss; positives on the diagonal.

  Args:
    queries: `[B, D]`.
    candidates: `[N, D]`, positives first.
    temperature: softmax temperature.
    candidate_log_q: optional `[N]` log sampling probabilities.
    candidate_ids: optional `[N]` ids; a negative with the positive's id
      (an accidental hit, e.g. a popular item twice in one batch) is masked
      out rather than pushed away from its own query.

  Returns:
    Scalar loss.
  """
  logits = info_nce_logits(queries, candidates, temperature, candidate_log_q)
  batch_size = tf.shape(queries)[0]
  labels = tf.range(batch_size)
  if candidate_ids is not None:
    positive_ids = candidate_ids[:batch_size]
    same_id = tf.equal(positive_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :])
    diagonal = tf.cast(tf.one_hot(labels, tf.shape(candidates)[0]), tf.bool)
    logits = tf.where(same_id & ~diagonal, logits.dtype.min, logits)
  losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                          logits=logits)
  return tf.reduce_mean(losses)
