"""Adam that updates only the embedding rows a batch touched (lazy Adam).

Keras's Adam applies a sparse gradient (`tf.IndexedSlices`, what an
embedding lookup's gradient is) densely: it decays both moments of every row
of the table and moves every row by its momentum, each step. With a
`[items, dim]` table the step then costs O(items): at 1M items x 64 that is
three passes over 256 MB tables, the largest catalogue-dependent part of the
two-tower step. Lazy Adam (TensorFlow Addons' `LazyAdam`, the usual choice
for large embedding tables) reads and writes only the rows with a gradient:
their moments decay and their values move as Adam's would, and the other
rows, moments included, stay as they were until a batch touches them. Dense
gradients follow Adam unchanged.

The two differ only for rows a step did not touch: Adam keeps moving such a
row by its decaying momentum, lazy Adam does not. The quality of both on the
shared datasets is in benchmarks/README.md, "Lazy Adam".
"""

from __future__ import annotations

import tensorflow as tf


class LazyAdam(tf.keras.optimizers.Adam):
  """`tf.keras.optimizers.Adam` with row-wise updates for sparse gradients.

  Keras sums a sparse gradient's repeated indices before `update_step`, so
  each row is updated once per step.
  """

  def __init__(self, learning_rate: float = 0.001, name: str = "LazyAdam",
               **kwargs):
    if kwargs.get("amsgrad"):
      raise ValueError("LazyAdam has no amsgrad variant")
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)

  def update_step(self, gradient, variable):
    """Adam's update, restricted to the rows of a sparse gradient."""
    if not isinstance(gradient, tf.IndexedSlices):
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    beta_2_power = tf.pow(beta_2, step)
    alpha = (tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2_power) /
             (1 - tf.pow(beta_1, step)))
    epsilon = (self.epsilon * tf.sqrt(1 - beta_2_power)
               if self.adaptive_epsilon else self.epsilon)
    index = self._index_dict[self._var_key(variable)]
    momentum, velocity = self._momentums[index], self._velocities[index]
    rows = gradient.indices
    momentum_rows = (beta_1 * tf.gather(momentum, rows) +
                     (1 - beta_1) * gradient.values)
    velocity_rows = (beta_2 * tf.gather(velocity, rows) +
                     (1 - beta_2) * tf.square(gradient.values))
    momentum.scatter_update(tf.IndexedSlices(momentum_rows, rows))
    velocity.scatter_update(tf.IndexedSlices(velocity_rows, rows))
    variable.scatter_sub(tf.IndexedSlices(
        alpha * momentum_rows / (tf.sqrt(velocity_rows) + epsilon), rows))
