"""DIN target attention (Zhou et al., KDD 2018)."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


class DinAttention(tf.keras.layers.Layer):
  """Pools a behaviour history by its relevance to a candidate item.

  DIN's activation unit scores each history item with an MLP over
  `[history, candidate, history - candidate, history * candidate]`. As in
  DIN, the weights are not softmax-normalised, so the pooled vector keeps the
  intensity of the user's interest; padding positions get weight zero. The
  hidden layers use ReLU (DIN uses Dice/PReLU).

  Args:
    hidden_units: sizes of the activation unit's hidden layers.
  """

  def __init__(self, hidden_units: Sequence[int] = (36,), **kwargs):
    super().__init__(**kwargs)
    self._hidden_units = tuple(hidden_units)
    self.activation_unit = tf.keras.Sequential(
        [tf.keras.layers.Dense(units, activation="relu") for units in hidden_units]
        + [tf.keras.layers.Dense(1)])

  def call(self, candidate: tf.Tensor, history: tf.Tensor,
           history_mask: tf.Tensor) -> tf.Tensor:
    """Attention-weighted sum of the history.

    Args:
      candidate: `[batch, dim]`.
      history: `[batch, length, dim]`.
      history_mask: `[batch, length]`, True at real positions.

    Returns:
      `[batch, dim]`; zeros for an empty history.
    """
    candidate = tf.broadcast_to(candidate[:, tf.newaxis, :], tf.shape(history))
    scores = self.activation_unit(tf.concat(
        [history, candidate, history - candidate, history * candidate], axis=-1))
    weights = scores * tf.cast(history_mask, scores.dtype)[:, :, tf.newaxis]
    return tf.reduce_sum(weights * history, axis=1)

  def get_config(self):
    return {**super().get_config(), "hidden_units": self._hidden_units}
