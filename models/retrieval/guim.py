"""GUIM: general user and item embeddings with a mixture of representation.

After "GUIM -- General User and Item Embedding with Mixture of Representation
in E-commerce" (arXiv 2207.00750):

- `ItemEncoder` embeds an item from its id, its text tokens, its categories
  and, when configured, a precomputed image vector. It is shared: the
  candidate tower is the item encoder plus an MLP, and the user encoder reads
  the history through the same item encoder, so side information reaches both
  towers and both live in one space.
- `GuimUserEncoder` runs causal self-attention blocks (`attention.py`) over
  the encoded history, then `MultiInterestHeads` pools the sequence into K
  vectors, each mapped by one shared MLP and normalised: the query tower
  returns `[batch, K, dim]` unit vectors.
- `GuimModel` trains with InfoNCE (`contrastive.py`) over in-batch plus
  uniformly sampled negatives with the logQ correction. The query of a row is
  the label-aware attention mix of its K vectors with respect to the row's
  positive item (MIND, ComiRec); retrieval scores an item by the max over the
  K vectors (`mixture_of_representation.max_merge_scores`).

What differs from the paper, whose code and full training recipe are not
public: the encoder is trained with next-item InfoNCE on (history prefix,
next item) pairs, not with a BERT-style masked-item objective, and there is
no user-id embedding, so a user's vectors depend only on their behaviour and
new users are embedded without retraining.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models.layers import attention
from models.layers import contrastive
from models.layers import mixture_of_representation
from models.layers import mlp
from models.layers import pooling
from models.retrieval import two_tower

RETRIEVAL_MERGE_RULES = ("max", "label_aware")
# How training scores a (user, candidate) pair: "target_query" mixes the K
# vectors once per row, by the positive (MIND, ComiRec), and scores every
# candidate with that mix; "per_candidate" (the default) mixes them for each
# candidate with that candidate as the target, which is the retrieval
# max-merge when the power is large, so that negatives are scored in training
# as in retrieval. With "target_query" no vector is trained against negatives
# on its own, and K=4 collapsed on MovieLens-100K (benchmarks/README.md).
TRAINING_SCORES = ("target_query", "per_candidate")


@dataclasses.dataclass(frozen=True)
class GuimConfig(two_tower.TwoTowerConfig):
  """Two-tower hyperparameters plus GUIM's.

  Attributes:
    num_interests: K, the user vectors per user.
    attention_power: label-aware attention sharpness in training; `inf`
      trains only the vector closest to the target (hard attention). The
      default is `1 / temperature`, the scale of the logits, since the
      vectors are unit-norm and a power of 1 would nearly average them.
    retrieval_merge: how the K scores of an item become one in
      `GuimModel.score`: "max" (the ANN merge) or "label_aware" (the
      training mix, with each candidate as the target).
    num_blocks: causal self-attention blocks of the user encoder.
    num_heads: attention heads per block.
    dropout: dropout inside the blocks and on the input sequence.
    interest_hidden_units: width of the multi-interest attention.
    image_dim: size of the items' precomputed image vectors; 0 when the
      items have none.
    training_scores: one of `TRAINING_SCORES`.
    epochs, early_stopping_min_improvement: `two_tower.VALIDATED_EPOCH_BUDGET`
      and `two_tower.MIN_RECALL_IMPROVEMENT`.
  """
  num_interests: int = 4
  attention_power: float = 20.0
  retrieval_merge: str = "max"
  num_blocks: int = 1
  num_heads: int = 2
  dropout: float = 0.1
  interest_hidden_units: int = 64
  image_dim: int = 0
  num_uniform_negatives: int = 256
  training_scores: str = "per_candidate"
  epochs: int = two_tower.VALIDATED_EPOCH_BUDGET
  early_stopping_min_improvement: float = two_tower.MIN_RECALL_IMPROVEMENT

  def __post_init__(self):
    if self.full_catalogue_softmax:
      raise ValueError("GUIM trains with sampled InfoNCE; full_catalogue_softmax "
                       "is a two-tower/SASRec option")
    if self.training_scores not in TRAINING_SCORES:
      raise ValueError(f"training_scores must be one of {TRAINING_SCORES}, "
                       f"got {self.training_scores!r}")
    if self.retrieval_merge not in RETRIEVAL_MERGE_RULES:
      raise ValueError(f"retrieval_merge must be one of {RETRIEVAL_MERGE_RULES}, "
                       f"got {self.retrieval_merge!r}")
    # JSON hyperparameters spell infinity as a string, e.g. "inf".
    object.__setattr__(self, "attention_power", float(self.attention_power))


class ItemEncoder(tf.keras.Model):
  """Id, text tokens, categories and optional image vector -> `[n, dim]`."""

  def __init__(self, vocab: two_tower.VocabularySizes, config: GuimConfig):
    super().__init__(name="item_encoder")
    self.config = config
    self.item_embedding = tf.keras.layers.Embedding(
        vocab.items, config.embedding_dim, name="item_id_embedding")
    self.token_embedding = tf.keras.layers.Embedding(vocab.title_tokens,
                                                     config.embedding_dim)
    self.category_embedding = tf.keras.layers.Embedding(vocab.categories,
                                                        config.embedding_dim)
    self.token_pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.category_pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.projection = tf.keras.layers.Dense(config.embedding_dim)

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    tokens = inputs[features.TITLE_TOKEN_INDICES]
    categories = inputs[features.CATEGORY_INDICES]
    parts = [
        self.item_embedding(inputs[features.ITEM_INDEX]),
        self.token_pooling(tokens, self.token_embedding(tokens)),
        self.category_pooling(categories, self.category_embedding(categories)),
    ]
    if self.config.image_dim:
      parts.append(tf.cast(inputs[features.ITEM_IMAGE_EMBEDDING], tf.float32))
    return self.projection(tf.concat(parts, axis=-1))


class GuimCandidateTower(tf.keras.Model):
  """The shared item encoder, an MLP, and normalisation."""

  def __init__(self, item_encoder: ItemEncoder, config: GuimConfig):
    super().__init__(name="candidate_tower")
    self.item_encoder = item_encoder
    self.mlp = mlp.mlp(config.tower_units, "candidate_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return tf.math.l2_normalize(self.mlp(self.item_encoder(inputs)), axis=-1)


class GuimUserEncoder(tf.keras.Model):
  """History -> K unit vectors: item encoder, causal blocks, MoR heads.

  Args:
    item_encoder: the encoder shared with the candidate tower.
    catalogue_features: item-encoder inputs of every item index, where the
      history's items get their side information from (arrays, or the
      model's shared `two_tower.catalogue_variables`).
    config: hyperparameters.
  """

  def __init__(self, item_encoder: ItemEncoder,
               catalogue_features: Mapping[str, np.ndarray | tf.Variable],
               config: GuimConfig):
    super().__init__(name="query_tower")
    self.item_encoder = item_encoder
    self.catalogue_features = two_tower.catalogue_variables(catalogue_features)
    self.encoder = attention.CausalSequenceEncoder(
        features.HISTORY_LENGTH, config.embedding_dim, config.num_blocks,
        config.num_heads, config.dropout)
    self.interest_heads = mixture_of_representation.MultiInterestHeads(
        config.num_interests, config.interest_hidden_units)
    self.mlp = mlp.mlp(config.tower_units, "interest_mlp")

  def encode_items(self, item_indices: tf.Tensor) -> tf.Tensor:
    """Item-encoder output for an index tensor of any shape, `[..., dim]`.

    Each distinct item is encoded once, so the cost follows the number of
    distinct items in the batch rather than batch size times history length.
    """
    distinct, positions = tf.unique(tf.reshape(item_indices, [-1]))
    encoded = self.item_encoder({
        name: tf.gather(values, distinct)
        for name, values in self.catalogue_features.items()})
    return tf.reshape(tf.gather(encoded, positions),
                      tf.concat([tf.shape(item_indices), [-1]], axis=0))

  def call(self, inputs: Mapping[str, tf.Tensor],
           training: bool = False) -> tf.Tensor:
    history = inputs[features.HISTORY_ITEM_INDICES]
    padding_mask = tf.not_equal(history, features.PADDING_INDEX)
    sequence = self.encoder(self.encode_items(history), padding_mask,
                            training=training)
    interests = self.interest_heads(sequence, padding_mask)
    return tf.math.l2_normalize(self.mlp(interests), axis=-1)


class InfoNceTask(tf.keras.layers.Layer, tfrs.tasks.Task):
  """InfoNCE over the batch's positives plus extra negatives, as a TFRS task."""

  def __init__(self, temperature: float, name: str = "info_nce"):
    super().__init__(name=name)
    self.temperature = temperature

  def call(self, query_embeddings: tf.Tensor, candidate_embeddings: tf.Tensor,
           candidate_log_q: tf.Tensor | None = None,
           candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
    """Mean loss; row i of the queries is paired with candidate i."""
    return contrastive.info_nce_loss(query_embeddings, candidate_embeddings,
                                     self.temperature, candidate_log_q,
                                     candidate_ids)

  def loss_from_scores(self, scores: tf.Tensor,
                       candidate_log_q: tf.Tensor | None = None,
                       candidate_ids: tf.Tensor | None = None) -> tf.Tensor:
    """The same loss from `[B, N]` similarity scores, positives diagonal."""
    return contrastive.in_batch_loss(
        contrastive.scaled_logits(scores, self.temperature, candidate_log_q),
        candidate_ids)


def mixed_sampling_log_q(train_probability: tf.Tensor, batch_size: tf.Tensor,
                         num_uniform: int, num_items: tf.Tensor) -> tf.Tensor:
  """Log of `two_tower.mixed_sampling_probability`, floored at 1e-6 as TFRS does."""
  probability = two_tower.mixed_sampling_probability(
      train_probability, batch_size, num_uniform, num_items)
  return tf.math.log(tf.maximum(probability, 1e-6))


class GuimModel(two_tower.RetrievalModel):
  """K-vector user tower, shared-encoder item tower, InfoNCE with logQ.

  Shares the catalogue and uniform negatives of `two_tower.RetrievalModel`;
  the loss differs because each user has K vectors.

  Args:
    query_tower: transformed features -> `[batch, K, dim]` unit vectors.
    candidate_tower: transformed features -> `[batch, dim]` unit vectors.
    catalogue_features: candidate-tower inputs of every item index; the source
      of uniform negatives.
    item_sampling_probability: `[num_items]` probability that an item is a
      positive in the train split.
    config: hyperparameters.
  """

  def __init__(self, query_tower: GuimUserEncoder,
               candidate_tower: GuimCandidateTower,
               catalogue_features: Mapping[str, np.ndarray],
               item_sampling_probability, config: GuimConfig):
    super().__init__(query_tower, candidate_tower, catalogue_features,
                     item_sampling_probability, config)
    self.task = InfoNceTask(config.temperature)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    candidate_ids = inputs[features.ITEM_INDEX]
    positives = self.candidate_tower(inputs)
    interests = self.query_tower(inputs, training=training)
    batch_size = tf.shape(candidate_ids)[0]
    candidates = positives
    num_uniform = 0
    if self.config.num_uniform_negatives and training:
      negatives, negative_ids = self._uniform_negatives()
      candidates = tf.concat([positives, negatives], axis=0)
      candidate_ids = tf.concat([candidate_ids, negative_ids], axis=0)
      num_uniform = self.config.num_uniform_negatives
    log_q = None
    if self.config.use_logq_correction:
      log_q = mixed_sampling_log_q(
          tf.gather(self.item_sampling_probability, candidate_ids), batch_size,
          num_uniform, tf.shape(self.item_sampling_probability)[0] - 2)
    if self.config.training_scores == "per_candidate":
      return self.task.loss_from_scores(
          mixture_of_representation.label_aware_scores(
              interests, candidates, self.config.attention_power),
          log_q, candidate_ids)
    queries = tf.math.l2_normalize(
        mixture_of_representation.label_aware_attention(
            interests, positives, self.config.attention_power), axis=-1)
    return self.task(queries, candidates, log_q, candidate_ids)

  def score(self, inputs: Mapping[str, tf.Tensor],
            candidate_embeddings: tf.Tensor) -> tf.Tensor:
    """`[batch, num_candidates]` scores under `config.retrieval_merge`."""
    interests = self.query_tower(inputs)
    if self.config.retrieval_merge == "max":
      return mixture_of_representation.max_merge_scores(interests,
                                                        candidate_embeddings)
    return mixture_of_representation.label_aware_scores(
        interests, candidate_embeddings, self.config.attention_power)


def build_guim(vocab: two_tower.VocabularySizes,
               catalogue_features: Mapping[str, np.ndarray],
               item_sampling_probability, config: GuimConfig) -> GuimModel:
  """GUIM with one item encoder shared by the user and candidate towers."""
  item_encoder = ItemEncoder(vocab, config)
  shared_catalogue = two_tower.catalogue_variables(catalogue_features)
  return GuimModel(GuimUserEncoder(item_encoder, shared_catalogue, config),
                   GuimCandidateTower(item_encoder, config),
                   shared_catalogue, item_sampling_probability, config)
