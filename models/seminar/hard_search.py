"""SIM's hard search: the history items of the candidate's category.

SIM (Pi et al., CIKM 2020) splits lifelong-sequence modelling in two: a
general search unit keeps the history items relevant to the candidate, an
exact search unit attends over them. Its hard search keeps the items whose
category equals the candidate's, which needs no learned parameter and is
what SIM deployed.
"""

from __future__ import annotations

import tensorflow as tf


def same_category_mask(history_categories: tf.Tensor,
                       candidate_categories: tf.Tensor,
                       real: tf.Tensor) -> tf.Tensor:
  """The history positions a candidate's hard search keeps.

  Args:
    history_categories: `[B, L]` category index of every history item.
    candidate_categories: `[B]` category index of every candidate.
    real: `[B, L]` bool, True at real (not padding) history positions.

  Returns:
    `[B, L]` bool: real positions whose category is the candidate's. A
    candidate without a category (index 0) keeps nothing.
  """
  candidates = candidate_categories[:, tf.newaxis]
  return tf.logical_and(
      real, tf.logical_and(tf.equal(history_categories, candidates),
                           candidates != 0))
