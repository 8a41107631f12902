"""Image encoders: uint8 RGB images -> embeddings.

- `SmallCnn`: trained from scratch; a few blocks of 3x3 convolution, ReLU
  and 2x2 max pooling, global average pooling, then a linear projection.
- `BackboneEncoder`: any Keras model the user saved (`.keras`, `.h5` or a
  SavedModel directory, read by `load_backbone`; nothing is downloaded),
  its output pooled to a vector if it is a feature map, then the same
  projection. Its weights are fine-tuned with the rest of the model.

Both take `[batch, height, width, 3]` uint8 (or float in [0, 255]) and feed
the network pixels scaled to [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def _scaled(images: tf.Tensor) -> tf.Tensor:
  return tf.cast(images, tf.float32) / 255.0


class SmallCnn(tf.keras.layers.Layer):
  """A small convolutional encoder trained from scratch.

  Args:
    filters: output channels of each convolution block.
    output_dim: width of the embedding.
  """

  def __init__(self, filters: Sequence[int], output_dim: int, **kwargs):
    super().__init__(**kwargs)
    self._filters = tuple(filters)
    self._output_dim = output_dim
    self.blocks = []
    for width in self._filters:
      self.blocks += [
          tf.keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
          tf.keras.layers.MaxPool2D(2)]
    self.pooling = tf.keras.layers.GlobalAveragePooling2D()
    self.projection = tf.keras.layers.Dense(output_dim)

  def call(self, images: tf.Tensor) -> tf.Tensor:
    """`[batch, height, width, 3]` -> `[batch, output_dim]`."""
    hidden = _scaled(images)
    for layer in self.blocks:
      hidden = layer(hidden)
    return self.projection(self.pooling(hidden))

  def get_config(self):
    return {**super().get_config(), "filters": self._filters,
            "output_dim": self._output_dim}


def load_backbone(path: str) -> tf.keras.Model:
  """The user's own Keras model from `path` (`.keras`, `.h5` or SavedModel).

  Raises:
    FileNotFoundError: if nothing is at `path`.
  """
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"no image backbone at {path}: give the path of "
                            "a .keras, .h5 or SavedModel Keras model")
  return tf.keras.models.load_model(path, compile=False)


class BackboneEncoder(tf.keras.layers.Layer):
  """A user's Keras backbone, pooled and projected.

  Args:
    backbone: maps `[batch, height, width, 3]` pixels in [0, 1] to
      `[batch, features]` or a feature map `[batch, h, w, features]` (then
      averaged over h and w).
    output_dim: width of the embedding.
  """

  def __init__(self, backbone: tf.keras.Model, output_dim: int, **kwargs):
    super().__init__(**kwargs)
    self.backbone = backbone
    self.projection = tf.keras.layers.Dense(output_dim)

  def call(self, images: tf.Tensor) -> tf.Tensor:
    """`[batch, height, width, 3]` -> `[batch, output_dim]`."""
    hidden = self.backbone(_scaled(images))
    if hidden.shape.rank == 4:
      hidden = tf.reduce_mean(hidden, axis=[1, 2])
    return self.projection(hidden)
