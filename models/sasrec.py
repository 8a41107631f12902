"""SASRec-class sequential retrieval (Kang & McAuley, ICDM 2018) as a TFRS task.

The query tower reads the user's history as a sequence: item-id embeddings
plus learned position embeddings go through causal self-attention blocks, and
the output at the last real position, joined with the request-time context,
is the query. Candidates come from the two-tower candidate tower, which shares
the item-id embedding with the sequence encoder.

The pipeline's Trainer (`models.sasrec_trainer`) trains as the paper does,
on each user's sequence once with a loss at every position
(`SequenceQueryTower.every_position`), but with the exact softmax over the
whole catalogue instead of binary cross-entropy with one random negative.
`build_sasrec`'s `two_tower.RetrievalModel` also trains on (history prefix,
next item) examples, each prefix of a sequence one query, with the in-batch
softmax (optional uniform negatives, the logQ correction) or the exact one
(`full_catalogue_softmax`): the offline benchmarks' way.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import tensorflow as tf

from data import features
from models import two_tower
from models.layers import attention
from models.layers import mlp
from models.layers import pooling


@dataclasses.dataclass(frozen=True)
class SasRecConfig(two_tower.TwoTowerConfig):
  """Two-tower retrieval hyperparameters plus the sequence encoder's.

  Attributes:
    num_blocks: causal self-attention blocks.
    num_heads: attention heads per block.
    dropout: dropout inside the blocks and on the input sequence.
    history_item_features: represent each history item as the candidate
      tower does, by its id plus its title tokens and categories (the sum
      of their embeddings), instead of by its id alone; a rare item then
      shares what it has in common with others.
    epochs: a budget, not a stopping rule: training stops on validation
      (`early_stopping_patience`, `early_stopping_min_improvement`) long
      before it on both shared datasets (learning curves in
      benchmarks/README.md, "Convergence"). The former cap of 15 epochs
      stopped the Trainer while validation still rose on Amazon Grocery.
    early_stopping_patience: more than two-tower's: one Recall@50 over the
      held-out rows moves by a point or two from one epoch to the next on
      MovieLens-100K, so a single worse epoch is no sign of convergence.
    early_stopping_min_improvement: a gain of less than 0.2 points of
      Recall@50 over the last renewing epoch does not renew the patience,
      so a flat, noisy curve ends.
    positions_per_batch: the pipeline's per-sequence training: the most
      positions (windows x their trimmed length) per batch. Windows of
      similar length are batched together, so a batch of full windows
      holds `positions_per_batch / features.HISTORY_LENGTH` of them and a
      batch of short ones many more; an epoch then costs a few dozen steps
      however short most users' sequences are, each with its full-catalogue
      softmax and candidate-tower pass.
    sampled_softmax: the pipeline's per-sequence training: True trains with
      a sampled softmax over each position's target, the batch's targets and
      `num_uniform_negatives` uniform draws per batch, logQ-corrected for
      that mixed proposal (`use_logq_correction`); False with the exact
      softmax over the whole catalogue; None (default) with the exact one
      up to `sasrec_trainer.EXACT_SOFTMAX_MAX_ITEMS` items, the sampled one
      above (`sasrec_trainer.SequenceRetrievalModel`).
    every_window: the pipeline's per-sequence training: train on every
      window of a user's sequence, not only on the newest one (the user's
      latest `features.HISTORY_LENGTH` + 1 items).
  """
  num_blocks: int = 2
  num_heads: int = 2
  dropout: float = 0.2
  num_uniform_negatives: int = 256
  epochs: int = 200
  early_stopping_patience: int = 5
  early_stopping_min_improvement: float = 0.002
  history_item_features: bool = False
  positions_per_batch: int = 3200
  sampled_softmax: Optional[bool] = None
  every_window: bool = True


class HistoryItemEncoder(tf.keras.layers.Layer):
  """Item indices `[batch, length]` -> `[batch, length, dim]` vectors.

  The sum of the item's id embedding and its mean title-token and mean
  category embeddings, with the candidate tower's tables, so that history
  and candidates share every item feature.

  Args:
    candidate_tower: the tower whose embedding tables are shared.
    catalogue_features: transformed candidate features of every item index.
  """

  def __init__(self, candidate_tower: two_tower.CandidateTower,
               catalogue_features: Mapping[str, tf.Tensor]):
    super().__init__(name="history_item_encoder")
    self.item_embedding = candidate_tower.item_embedding
    self.title_embedding = candidate_tower.title_embedding
    self.category_embedding = candidate_tower.category_embedding
    self.pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.title_tokens = tf.constant(
        catalogue_features[features.TITLE_TOKEN_INDICES])
    self.categories = tf.constant(
        catalogue_features[features.CATEGORY_INDICES])

  def call(self, items: tf.Tensor) -> tf.Tensor:
    flat = tf.reshape(items, [-1])
    tokens = tf.gather(self.title_tokens, flat)
    categories = tf.gather(self.categories, flat)
    vectors = (self.item_embedding(flat) +
               self.pooling(tokens, self.title_embedding(tokens)) +
               self.pooling(categories, self.category_embedding(categories)))
    shape = tf.shape(items)
    return tf.reshape(vectors, [shape[0], shape[1], vectors.shape[-1]])


class SequenceQueryTower(tf.keras.Model):
  """Causal self-attention over the history, then the request context."""

  def __init__(self, item_embedding: tf.keras.layers.Layer, config: SasRecConfig):
    super().__init__(name="sequence_query_tower")
    # Id embeddings, or a `HistoryItemEncoder`: item indices -> vectors.
    self.item_embedding = item_embedding
    self.encoder = attention.CausalSequenceEncoder(
        features.HISTORY_LENGTH, config.embedding_dim, config.num_blocks,
        config.num_heads, config.dropout)
    self.use_request_context = config.use_request_context
    self.hour_embedding = tf.keras.layers.Embedding(24, 8)
    self.day_embedding = tf.keras.layers.Embedding(7, 4)
    self.mlp = mlp.mlp(config.tower_units, "sequence_query_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    """The query after the whole history, with the request's context.

    Args:
      inputs: `[batch, length]` history item indices, `[batch]` context.
      training: enables dropout.

    Returns:
      `[batch, dim]` unit vectors.
    """
    sequence, lengths = self._encode(inputs, training)
    return self._query(attention.gather_last_position(sequence, lengths),
                       inputs)

  def every_position(self, inputs: Mapping[str, tf.Tensor],
                     training: bool = False) -> tf.Tensor:
    """The query after each prefix of the history, SASRec's training view.

    Position t sees history items 0..t only (the causal mask), so its query
    is what `call` returns for the history cut after item t, given the
    context of the request that followed it.

    Args:
      inputs: `[batch, length]` history item indices and `[batch, length]`
        context: at position t, that of the request after item t.
      training: enables dropout.

    Returns:
      `[batch, length, dim]` unit vectors; padding positions are arbitrary.
    """
    sequence, _ = self._encode(inputs, training)
    return self._query(sequence, inputs)

  def _encode(self, inputs, training):
    """Contextual history vectors `[batch, length, dim]`, and the lengths."""
    history = inputs[features.HISTORY_ITEM_INDICES]
    padding_mask = tf.not_equal(history, features.PADDING_INDEX)
    sequence = self.encoder(self.item_embedding(history), padding_mask,
                            training=training)
    return sequence, tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1)

  def _query(self, state: tf.Tensor, inputs) -> tf.Tensor:
    """Sequence state `[..., dim]` (+ context `[...]`) -> unit queries."""
    if self.use_request_context:
      state = tf.concat([
          state,
          self.hour_embedding(inputs[features.HOUR_OF_DAY]),
          self.day_embedding(inputs[features.DAY_OF_WEEK]),
          tf.cast(inputs[features.TIMESTAMP_Z], tf.float32)[..., tf.newaxis],
      ], axis=-1)
    return tf.math.l2_normalize(self.mlp(state), axis=-1)


def build_sasrec(vocab: two_tower.VocabularySizes, catalogue_features,
                 item_sampling_probability,
                 config: SasRecConfig) -> two_tower.RetrievalModel:
  """The sequential retriever: sequence query tower, two-tower candidates."""
  item_embedding = tf.keras.layers.Embedding(vocab.items, config.embedding_dim,
                                             name="item_id_embedding")
  candidate_tower = two_tower.CandidateTower(vocab, item_embedding, config)
  history_encoder = (HistoryItemEncoder(candidate_tower, catalogue_features)
                     if config.history_item_features else item_embedding)
  return two_tower.RetrievalModel(
      SequenceQueryTower(history_encoder, config), candidate_tower,
      catalogue_features, item_sampling_probability, config)
