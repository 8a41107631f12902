"""SASRec-class sequential retrieval (Kang & McAuley, ICDM 2018) as a TFRS task.

The query tower reads the user's history as a sequence: item-id embeddings
plus learned position embeddings go through causal self-attention blocks, and
the output at the last real position, joined with the request-time context,
is the query. Candidates come from the two-tower candidate tower, which shares
the item-id embedding with the sequence encoder.

`SequenceRetrievalModel`, which the pipeline's Trainer
(`models.retrieval.sasrec_trainer`) fits, trains as the paper does, on each
user's sequence once with a loss at every position
(`SequenceQueryTower.every_position`), but with a softmax over the whole
catalogue (or a sampled pool with the logQ correction) instead of binary
cross-entropy with one random negative.
`build_sasrec`'s `two_tower.RetrievalModel` also trains on (history prefix,
next item) examples, each prefix of a sequence one query, with the in-batch
softmax (optional uniform negatives, the logQ correction) or the exact one
(`full_catalogue_softmax`): the offline benchmarks' way.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models.layers import attention
from models.layers import mlp
from models.layers import pooling
from models.retrieval import two_tower


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
      shares what it has in common with others. On by default, by quality
      on Amazon Grocery, 3 seeds each (benchmarks/README.md, "History item
      features"): above EASE^R on Recall@10, Recall@50 and NDCG@10 in every
      seed of the temporal split with request time, where ids alone were in
      one; higher on all three under leave-last-out without request time;
      within a seed's std elsewhere.
    epochs: a budget, not a stopping rule: training stops on validation
      (`early_stopping_patience`, `early_stopping_min_improvement`) long
      before it on both shared datasets (learning curves in
      benchmarks/README.md, "The default model against EASE^R, in every
      setting"). The former cap of 15 epochs stopped the Trainer while
      validation still rose on Amazon Grocery.
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
      softmax and candidate-tower pass. 1,600 (it was 3,200) by quality on
      Amazon Grocery, 3 seeds each: higher on Recall@10, Recall@50 and
      NDCG@10 in every seed with request time, and above EASE^R on all
      three in every seed without it, where 3,200 was in none; within noise
      on MovieLens-100K (benchmarks/README.md, "Learning rate and batch").
    sampled_softmax: the pipeline's per-sequence training: True trains with
      a sampled softmax over each position's target, the batch's targets and
      `num_uniform_negatives` uniform draws per batch, logQ-corrected for
      that mixed proposal (`use_logq_correction`); False with the exact
      softmax over the whole catalogue; None (default) with the exact one
      wherever it is affordable, the sampled one elsewhere
      (`sasrec_trainer.uses_sampled_softmax`, `SequenceRetrievalModel`).
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
  history_item_features: bool = True
  positions_per_batch: int = 1600
  sampled_softmax: Optional[bool] = None
  every_window: bool = True


class HistoryItemEncoder(tf.keras.layers.Layer):
  """Item indices `[batch, length]` -> `[batch, length, dim]` vectors.

  The sum of the item's id embedding and its mean title-token and mean
  category embeddings, with the candidate tower's tables, so that history
  and candidates share every item feature.

  Args:
    candidate_tower: the tower whose embedding tables are shared.
    catalogue_variables: the model's `two_tower.catalogue_variables`, whose
      title and category indices it reads (a checkpointed copy, shared).
  """

  def __init__(self, candidate_tower: two_tower.CandidateTower,
               catalogue_variables: Mapping[str, tf.Variable]):
    super().__init__(name="history_item_encoder")
    self.item_embedding = candidate_tower.item_embedding
    self.title_embedding = candidate_tower.title_embedding
    self.category_embedding = candidate_tower.category_embedding
    self.pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.title_tokens = catalogue_variables[features.TITLE_TOKEN_INDICES]
    self.categories = catalogue_variables[features.CATEGORY_INDICES]

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
  shared_catalogue = two_tower.catalogue_variables(catalogue_features)
  history_encoder = (HistoryItemEncoder(candidate_tower, shared_catalogue)
                     if config.history_item_features else item_embedding)
  return two_tower.RetrievalModel(
      SequenceQueryTower(history_encoder, config), candidate_tower,
      shared_catalogue, item_sampling_probability, config)


def replica_share(mean_loss: tf.Tensor) -> tf.Tensor:
  """A replica's mean loss over its own positions, divided by the replicas
  in sync (1 without a strategy).

  The optimizer sums the replicas' gradients (and Keras their losses), which
  then make the mean over the global batch's positions, as one process's
  step has (exactly when the replicas hold equally many).
  """
  return mean_loss / tf.distribute.get_strategy().num_replicas_in_sync


class SequenceRetrievalModel(tfrs.Model):
  """Next-item softmax at every position of a window.

  Over the whole catalogue, or sampled: each position's target against a
  pool of the batch's targets (drawn from the train distribution: in-batch
  negatives) and `num_uniform_negatives` items drawn uniformly from the
  catalogue (mixed negative sampling; Yang et al., WWW 2020 companion),
  shared by every position. Each pooled logit is reduced by the log of the
  probability that one draw into the pool is that item
  (`two_tower.mixed_sampling_probability`; the logQ correction of Yi et
  al., RecSys 2019), and a pooled item equal to the position's target, other
  than the target's own column, is masked out (accidental hits).

  Args:
    query_tower: the served sequence query tower.
    candidate_tower: the served candidate tower.
    catalogue_features: transformed candidate features of every item index;
      the served model's `catalogue_features` share its copy.
    item_sampling_probability: `[item indices]` train frequency of each
      item (`ItemCatalogue.sampling_probability`).
    config: the hyperparameters: `temperature`, and for the sampled softmax
      `num_uniform_negatives` and `use_logq_correction`.
    sampled: the sampled softmax, else the exact one.
  """

  def __init__(self, query_tower: SequenceQueryTower,
               candidate_tower: tf.keras.Model,
               catalogue_features: Mapping[str, np.ndarray | tf.Variable],
               item_sampling_probability: np.ndarray,
               config: SasRecConfig, sampled: bool):
    super().__init__()
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    self.catalogue_features = two_tower.catalogue_variables(
        catalogue_features)
    self.item_sampling_probability = tf.constant(item_sampling_probability,
                                                 tf.float32)
    self.config = config
    self.sampled = sampled
    # Summed here and divided by the positions in `sampled_loss`: the mean
    # over positions, as the exact softmax's loss. (Keras refuses a loss
    # that averages itself under a `tf.distribute` strategy.)
    self.task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction=tf.keras.losses.Reduction.SUM),
        temperature=config.temperature, remove_accidental_hits=True)

  def _items(self, indices: tf.Tensor | None = None) -> tf.Tensor:
    """Candidate vectors of item indices; of every item if None."""
    # A plain dict: Keras keeps the structure of a layer's first inputs, and
    # this attribute's tracked dict wrapper would then break the export.
    if indices is None:  # Index 0 is padding, never a target.
      return self.candidate_tower({name: values[1:] for name, values in
                                   self.catalogue_features.items()})
    return self.candidate_tower({name: tf.gather(values, indices) for
                                 name, values in
                                 self.catalogue_features.items()})

  def sampled_loss(self, queries: tf.Tensor, targets: tf.Tensor,
                   draws: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy of each target against the pool of targets+draws
    (`replica_share` of it under a `tf.distribute` strategy).

    Args:
      queries: `[positions, dim]` query vectors.
      targets: `[positions]` item index of each position's next item.
      draws: `[num_uniform_negatives]` uniformly drawn item indices.
    """
    pool = tf.concat([targets, draws], axis=0)
    probability = None
    if self.config.use_logq_correction:
      # Padding and the OOV bucket are never drawn.
      probability = two_tower.mixed_sampling_probability(
          tf.gather(self.item_sampling_probability, pool), tf.size(targets),
          tf.size(draws), tf.size(self.item_sampling_probability) - 2)
    total = self.task(queries, self._items(pool),
                      candidate_sampling_probability=probability,
                      candidate_ids=pool, compute_metrics=False)
    return replica_share(tf.math.divide_no_nan(
        total, tf.cast(tf.size(targets), tf.float32)))

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    """Mean cross-entropy of the next item over every real position
    (`replica_share` of it under a `tf.distribute` strategy)."""
    real = tf.not_equal(inputs[features.HISTORY_ITEM_INDICES],
                        features.PADDING_INDEX)
    queries = tf.boolean_mask(
        self.query_tower.every_position(inputs, training=training), real)
    targets = tf.boolean_mask(inputs[features.ITEM_INDEX], real)
    if self.sampled:
      num_indices = tf.size(self.item_sampling_probability, out_type=tf.int64)
      # Index 0 is padding and the last index is the OOV bucket.
      return self.sampled_loss(queries, targets, tf.random.uniform(
          [self.config.num_uniform_negatives], 1, num_indices - 1, tf.int64))
    # Logit j is item j + 1.
    logits = tf.matmul(queries, self._items(), transpose_b=True) / \
        self.config.temperature
    return replica_share(tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets - 1,
                                                       logits=logits)))
