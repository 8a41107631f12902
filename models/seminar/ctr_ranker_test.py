"""Tests for the CTR ranker's training step."""

import numpy as np
import tensorflow as tf

from models.seminar import ctr_ranker


class _Bias(ctr_ranker.CtrRanker):
  """One logit for every example: a single trainable bias."""

  def __init__(self):
    super().__init__()
    self.bias = tf.Variable(0.0)
    self.unread = tf.Variable(1.0)  # No gradient: must be skipped.

  def logits(self, batch, training=False):
    return tf.fill(tf.shape(batch[ctr_ranker.CANDIDATE]), self.bias)


def test_loss_is_the_sigmoid_cross_entropy_and_the_step_moves_to_the_labels():
  model = _Bias()
  model.compile(optimizer=tf.keras.optimizers.SGD(1.0))
  batch = {ctr_ranker.CANDIDATE: tf.constant([1, 2, 3, 4]),
           ctr_ranker.LABEL: tf.constant([1., 1., 1., 0.])}
  loss = model.fit(tf.data.Dataset.from_tensors(batch),
                   verbose=0).history["loss"][0]
  # Logit 0: every example costs log 2.
  np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-6)
  # d/db mean BCE = mean(sigmoid(0) - y) = 0.5 - 0.75; one SGD step of 1.
  np.testing.assert_allclose(model.bias.numpy(), 0.25, rtol=1e-6)
  assert model.unread.numpy() == 1.0
