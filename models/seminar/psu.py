"""SEMINAR's pretraining search unit (PSU), and `build_seminar`.

The PSU learns the pair encoder (`seminar_encoder.PairEncoder`) and the
target attention that the retriever (`seminar.SeminarRetriever`) restores,
with three objectives, each switchable by a zero weight:

- next pair prediction: target attention from the current pair over the
  pairs so far, then an MLP, scored against the next pair (in-batch InfoNCE);
- multi-modal alignment: InfoNCE between an item's ID, text and image views
  (temperature about 0.05);
- query-item relevance: InfoNCE of a query against the items of the same
  sequence, its own item being the positive.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models.layers import contrastive
from models.layers import mlp
from models.layers import target_attention
from models.seminar import encoder as seminar_encoder
from models.seminar import model as seminar


class SeminarPretrainer(tf.keras.Model):
  """The pretraining search unit (PSU) with its three objectives.

  Batches are dicts with `items` `[B, L]` (oldest first, right-padded) and
  `keywords` `[B, L, Q]`.
  """

  def __init__(self, encoder: seminar_encoder.PairEncoder,
               config: seminar.SeminarConfig):
    super().__init__(name="seminar_psu")
    self.config = config
    self.encoder = encoder
    self.attention = seminar.build_target_attention(config)
    dim = config.embedding_dim
    self.next_pair_mlp = mlp.mlp((2 * dim, dim), "next_pair_mlp")
    self.next_pair_mlp.build([None, 2 * dim])
    self.loss_trackers = {
        name: tf.keras.metrics.Mean(name)
        for name in ("loss", "next_pair", "alignment", "relevance")}

  @property
  def metrics(self):
    return list(self.loss_trackers.values())

  def _next_pair_loss(self, items, keywords, item_vectors, real, training):
    pairs = self.encoder.pairs(item_vectors, keywords)
    history, history_items = pairs[:, :-1], item_vectors[:, :-1]
    state = self.attention(
        history, history, target_attention.causal_history_mask(real[:, :-1]),
        selection_history=history_items, training=training)
    predicted = self.next_pair_mlp(tf.concat([state, history], -1))
    has_next = tf.logical_and(real[:, :-1], real[:, 1:])
    return contrastive.cosine_info_nce_loss(
        tf.boolean_mask(predicted, has_next),
        tf.boolean_mask(pairs[:, 1:], has_next), self.config.temperature,
        tf.boolean_mask(items[:, 1:], has_next))

  def _alignment_loss(self, items, real):
    real_items = tf.boolean_mask(items, real)
    views = [tf.boolean_mask(view, real) for view in self.encoder.views(items)]
    pairs_of_views = [(a, b) for i, a in enumerate(views)
                      for b in views[i + 1:]]
    temperature = self.config.alignment_temperature
    return tf.add_n([
        0.5 * (contrastive.cosine_info_nce_loss(a, b, temperature, real_items)
               + contrastive.cosine_info_nce_loss(b, a, temperature,
                                                  real_items))
        for a, b in pairs_of_views]) / len(pairs_of_views)

  def _relevance_loss(self, items, keywords, item_vectors, real):
    queries = tf.math.l2_normalize(self.encoder.queries(keywords), -1)
    logits = tf.einsum("btd,bld->btl", queries,
                       tf.math.l2_normalize(item_vectors, -1))
    # In-sequence negatives: the sequence's other items, not its padding
    # and not other occurrences of the positive item.
    logits = tf.where(real[:, tf.newaxis, :],
                      logits / self.config.temperature, logits.dtype.min)
    own_positions = tf.broadcast_to(tf.range(tf.shape(items)[1]),
                                    tf.shape(items))
    return tf.reduce_mean(tf.boolean_mask(contrastive.softmax_losses(
        logits, own_positions, items, items[:, tf.newaxis, :]), real))

  def losses_of(self, batch: Mapping[str, tf.Tensor],
                training: bool = False) -> dict[str, tf.Tensor]:
    """Each enabled objective's loss."""
    config = self.config
    items, keywords = batch["items"], batch["keywords"]
    real = tf.not_equal(items, features.PADDING_INDEX)
    item_vectors = self.encoder.items(items)
    losses = {}
    if config.next_pair_weight:
      losses["next_pair"] = self._next_pair_loss(items, keywords, item_vectors,
                                                 real, training)
    if config.alignment_weight and self.encoder.num_views > 1:
      losses["alignment"] = self._alignment_loss(items, real)
    if config.relevance_weight and config.use_queries:
      losses["relevance"] = self._relevance_loss(items, keywords,
                                                 item_vectors, real)
    return losses

  def total_loss(self, batch: Mapping[str, tf.Tensor],
                 training: bool = False) -> tf.Tensor:
    """The weighted sum of the enabled objectives' losses on `batch`."""
    return self._total(self.losses_of(batch, training))

  def _total(self, losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
    weights = {"next_pair": self.config.next_pair_weight,
               "alignment": self.config.alignment_weight,
               "relevance": self.config.relevance_weight}
    if not losses:
      raise ValueError("every PSU objective is disabled")
    return tf.add_n([weights[name] * loss for name, loss in losses.items()])

  def train_step(self, batch):
    with tf.GradientTape() as tape:
      losses = self.losses_of(batch, training=True)
      total = self._total(losses)
    seminar.apply_present_gradients(self.optimizer, tape, total,
                                    self.trainable_variables)
    self.loss_trackers["loss"].update_state(total)
    for name, loss in losses.items():
      self.loss_trackers[name].update_state(loss)
    return {name: tracker.result()
            for name, tracker in self.loss_trackers.items()}


def build_seminar(item_tokens: np.ndarray, num_tokens: int,
                  config: seminar.SeminarConfig,
                  image_vectors: np.ndarray | None = None
                  ) -> tuple[SeminarPretrainer, seminar.SeminarRetriever]:
  """The PSU and the downstream retriever, each with its own encoder."""
  encoders = [seminar_encoder.PairEncoder(
      item_tokens, num_tokens, config.embedding_dim, config.use_text,
      config.use_queries, image_vectors) for _ in range(2)]
  return (SeminarPretrainer(encoders[0], config),
          seminar.SeminarRetriever(encoders[1], config))
