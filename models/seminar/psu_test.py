"""Tests for SEMINAR's pretraining search unit."""

import numpy as np
import pytest
import tensorflow as tf

from models.seminar.model_test import small_batch
from models.seminar.model_test import small_models


@pytest.mark.parametrize("disabled", ["next_pair_weight", "alignment_weight",
                                      "relevance_weight"])
def test_each_psu_objective_switches_off(disabled):
  pretrainer, _ = small_models(**{disabled: 0.0})
  expected = {"next_pair", "alignment", "relevance"}
  expected.discard(disabled.removesuffix("_weight"))
  assert set(pretrainer.losses_of(small_batch())) == expected


def test_psu_training_reduces_every_objective():
  pretrainer, _ = small_models()
  batch = small_batch()
  before = pretrainer.losses_of(batch)
  # Eager: tracing the train step costs more than these few steps.
  pretrainer.compile(optimizer=tf.keras.optimizers.Adam(0.05),
                     run_eagerly=True)
  pretrainer.fit(tf.data.Dataset.from_tensors(batch).repeat(15), verbose=0)
  after = pretrainer.losses_of(batch)
  for name, loss in before.items():
    assert after[name] < 0.8 * loss, name


def test_relevance_loss_equals_the_former_in_sequence_formula():
  """The PSU's former relevance loss: negatives are the sequence's other
  real items, other occurrences of the positive masked with -1e9."""
  pretrainer, _ = small_models(next_pair_weight=0.0, alignment_weight=0.0)
  batch = small_batch()
  # Item 2 twice in the first sequence: an accidental hit both ways.
  items = tf.constant(np.where(np.arange(5) == 3, 2, batch["items"].numpy()))
  keywords = batch["keywords"]
  encoder = pretrainer.encoder
  real = items != 0
  logits = tf.einsum(
      "btd,bld->btl", tf.math.l2_normalize(encoder.queries(keywords), -1),
      tf.math.l2_normalize(encoder.items(items), -1))
  same_item = tf.equal(items[:, :, tf.newaxis], items[:, tf.newaxis, :])
  own = tf.eye(5, dtype=tf.bool)[tf.newaxis]
  allowed = real[:, tf.newaxis, :] & (own | ~same_item)
  logits = tf.where(allowed, logits / pretrainer.config.temperature, -1e9)
  labels = tf.broadcast_to(tf.range(5), tf.shape(items))
  former = tf.reduce_mean(tf.boolean_mask(
      tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits), real))
  relevance = pretrainer.losses_of({"items": items, "keywords": keywords})
  assert float(relevance["relevance"]) == pytest.approx(float(former),
                                                        rel=1e-6)
