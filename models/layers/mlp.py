"""The plain feed-forward block every tower ends with."""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def mlp(units: Sequence[int], name: str) -> tf.keras.Sequential:
  """ReLU dense layers with a linear last layer.

  Args:
    units: output width of each layer; the last one is linear, so the block
      can end in an embedding or a logit.
    name: Keras name of the block (checkpoint paths depend on it).

  Returns:
    The `tf.keras.Sequential` block.
  """
  layers = [tf.keras.layers.Dense(u, activation="relu") for u in units[:-1]]
  layers.append(tf.keras.layers.Dense(units[-1]))
  return tf.keras.Sequential(layers, name=name)
