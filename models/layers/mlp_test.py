"""Tests for the feed-forward block."""

import numpy as np
import tensorflow as tf

from models.layers import mlp as mlp_lib


def test_hidden_layers_are_relu_and_the_last_is_linear():
  block = mlp_lib.mlp((3, 2), "block")
  block.build((None, 2))
  hidden, last = block.layers
  hidden.set_weights([-np.eye(2, 3, dtype=np.float32), np.zeros(3, np.float32)])
  last.set_weights([-np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
  # Inputs [1, -2]: hidden pre-activation [-1, 2, 0] -> ReLU [0, 2, 0];
  # the linear last layer keeps the negative sum -2 in both outputs.
  np.testing.assert_allclose(block(tf.constant([[1.0, -2.0]])).numpy(), [[-2.0, -2.0]])
  assert block.name == "block"
