"""Tests for lazy Adam."""

import numpy as np
import pytest
import tensorflow as tf

from models import distribution_testing
from models import lazy_adam


def _sparse_steps(optimizer, rows_per_step):
  """Applies a gradient of ones to `rows_per_step[i]` of a [4, 2] table."""
  table = tf.Variable(np.arange(8, dtype=np.float32).reshape(4, 2))
  for rows in rows_per_step:
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.gather(table, rows))
    optimizer.apply_gradients([(tape.gradient(loss, table), table)])
  return table.numpy()


def test_rows_a_step_touches_move_as_adams_and_the_others_do_not():
  start = np.arange(8, dtype=np.float32).reshape(4, 2)
  # Two steps on the same rows: lazy Adam equals Adam; row 3 never moves.
  lazy = _sparse_steps(lazy_adam.LazyAdam(0.1), [[0, 1], [0, 1]])
  dense = _sparse_steps(tf.keras.optimizers.Adam(0.1), [[0, 1], [0, 1]])
  np.testing.assert_allclose(lazy, dense, atol=1e-5)
  # Adam's first steps move a row with gradient 1 by the learning rate.
  np.testing.assert_allclose(lazy[:2], start[:2] - 0.2, rtol=1e-5)
  np.testing.assert_array_equal(lazy[2:], start[2:])
  # Rows 0 then 2: Adam moves row 0 again by its momentum at step 2, lazy
  # Adam leaves it where step 1 put it.
  lazy = _sparse_steps(lazy_adam.LazyAdam(0.1), [[0], [2]])
  dense = _sparse_steps(tf.keras.optimizers.Adam(0.1), [[0], [2]])
  np.testing.assert_allclose(lazy[0], start[0] - 0.1, rtol=1e-5)
  assert np.all(dense[0] < lazy[0])
  np.testing.assert_allclose(lazy[2], dense[2], atol=1e-5)


def test_a_repeated_row_is_updated_once_with_its_summed_gradient():
  # Row 0 twice in one lookup: gradient 2, and Adam's first step is still
  # one learning rate (m / sqrt(v) = 1 whatever the gradient's size).
  lazy = _sparse_steps(lazy_adam.LazyAdam(0.1), [[0, 0]])
  np.testing.assert_allclose(lazy[0], [-0.1, 0.9], rtol=1e-5)


# Two replicas both read row 1 of a [3, 2] table of ones, as both workers of
# a job read the same uniform negatives; replica 0 also row 2.
_TWO_REPLICA_SCRIPT = """
from models import lazy_adam
with strategy.scope():
  table = tf.Variable(tf.ones([3, 2]))
  optimizer = lazy_adam.LazyAdam(0.1)
rows = strategy.experimental_distribute_values_from_function(
    lambda context: tf.constant([1, 2] if context.replica_id_in_sync_group == 0
                                else [1]))

@tf.function
def step(local_rows):
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.nn.embedding_lookup(table, local_rows))
  optimizer.apply_gradients([(tape.gradient(loss, table), table)])

strategy.run(step, args=(rows,))
print(json.dumps(table.numpy().tolist()))
"""


def test_a_row_both_replicas_touch_moves_once_as_one_process_s():
  table = np.array(
      distribution_testing.run_on_two_logical_cpus(_TWO_REPLICA_SCRIPT))
  # The replicas' sparse gradients are concatenated, row 1 twice; summed
  # before the update, it moves one learning rate, as in one process.
  # Applied twice it would move two.
  np.testing.assert_allclose(table, [[1.0, 1.0], [0.9, 0.9], [0.9, 0.9]],
                             rtol=1e-5)


def test_dense_gradients_follow_adam():
  values = []
  for optimizer in (lazy_adam.LazyAdam(0.1), tf.keras.optimizers.Adam(0.1)):
    weight = tf.Variable([1.0, -2.0])
    for _ in range(3):
      with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weight**2)
      optimizer.apply_gradients([(tape.gradient(loss, weight), weight)])
    values.append(weight.numpy())
  np.testing.assert_allclose(values[0], values[1], rtol=1e-6)


def test_amsgrad_is_refused():
  with pytest.raises(ValueError, match="amsgrad"):
    lazy_adam.LazyAdam(0.1, amsgrad=True)
