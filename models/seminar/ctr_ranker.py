"""A candidate scorer trained as a click-through (CTR) ranker.

SEMINAR and its paper's baselines (DIN, SIM, TWIN) are compared on one task:
a user's history and one candidate item in, the probability that the user
interacts with the candidate out. `CtrRanker` trains any of them the same
way, sigmoid cross-entropy on labelled (history, candidate) examples, so
that their log losses compare; each model only says how it turns a batch
into logits (`logits`).
"""

from __future__ import annotations

import tensorflow as tf

# Batch features: the history's item indices `[B, L]` (oldest first,
# right-padded with 0), its query keywords `[B, L, Q]`, the candidate item
# index `[B]` and the label `[B]` (1 interacted, 0 sampled negative).
HISTORY = "items"
KEYWORDS = "keywords"
CANDIDATE = "candidate"
LABEL = "label"
# The features `training.length_bucketed_batches` trims to a batch's longest
# history.
SEQUENCES = (HISTORY, KEYWORDS)


class CtrRanker(tf.keras.Model):
  """Trains `logits(batch)` with sigmoid cross-entropy on `batch[LABEL]`."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.loss_tracker = tf.keras.metrics.Mean("loss")

  @property
  def metrics(self):
    return [self.loss_tracker]

  def logits(self, batch: dict[str, tf.Tensor],
             training: bool = False) -> tf.Tensor:
    """`[B]` logits of the candidates of `batch`."""
    raise NotImplementedError

  def call(self, batch, training=False):
    return self.logits(batch, training)

  def train_step(self, batch):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
          tf.cast(batch[LABEL], tf.float32), self.logits(batch, True)))
    gradients = tape.gradient(loss, self.trainable_variables)
    # A model may hold variables its logits never read (e.g. SEMINAR's
    # query gate when queries are off).
    self.optimizer.apply_gradients(
        [(gradient, variable) for gradient, variable
         in zip(gradients, self.trainable_variables) if gradient is not None])
    self.loss_tracker.update_state(loss)
    return {"loss": self.loss_tracker.result()}
