"""GUIM: general user and item embeddings with a mixture of representation.

After "GUIM -- General User and Item Embedding with Mixture of Representation
in E-commerce" (arXiv 2207.00750):

- `ItemEncoder` embeds an item from its id, its text tokens, its categories
  and, when configured, a precomputed image vector. It is shared: the
  candidate tower is the item encoder plus an MLP, and the user encoder reads
  the history through the same item encoder, so side information reaches both
  towers and both live in one space.
- `GuimUserEncoder` runs self-attention blocks (`attention.py`) over the
  encoded history, then `MultiInterestHeads` pools the sequence into K
  vectors, each mapped by one shared MLP and normalised: the query tower
  returns `[batch, K, dim]` unit vectors. With `num_event_types`, each
  history position's behaviour type (Taobao's pv/cart/fav/buy, feature
  `HISTORY_EVENT_INDICES`) adds a type embedding to its item encoding, as
  BERT's token types: the closest our data comes to the paper's several
  businesses. Type 0, or no such feature, adds nothing.
- `GuimModel` trains two objectives, each InfoNCE (`contrastive.py`) over
  in-batch plus uniformly sampled negatives with the logQ correction:
  - next item: the query of a (history, next item) row is the label-aware
    attention mix of its K vectors with respect to the candidates (MIND,
    ComiRec); retrieval scores an item by the max over the K vectors
    (`mixture_of_representation.max_merge_scores`);
  - masked item (BERT4Rec, the paper's BERT-like objective): each real
    history position is masked with probability `masked_item_probability`
    (padding never), a learned [MASK] vector replaces its item encoding (the
    masked id is not even encoded), and the encoder's output at the position,
    through the same MLP as the K vectors, predicts the masked item against
    the other rows' masked items and the uniform negatives.
  The loss is the next-item loss plus `masked_item_weight` times the
  masked-item loss; a weight of 0 is the next-item model alone, unchanged.

Choices the paper leaves open (its code and full recipe are not public):

- One encoder, two attention masks (as UniLM): the masked-item objective runs
  the user encoder's blocks bidirectionally, since a causal encoder sees at a
  masked position only the [MASK] and earlier items and would learn
  next-item prediction again; the query tower stays causal, as before, so
  serving and the next-item loss are unchanged, and both objectives train
  the same weights.
- The masked sequence is the row's history, without its next item, so the
  masked objective never reads the next-item target. A masked position keeps
  its position and type embeddings: they say where and how the user
  interacted, not with what.
- The logQ correction of the masked targets uses the item's train positive
  frequency, which is how often it sits in histories up to the position
  weighting of the per-row histories.
- There is no user-id embedding, so a user's vectors depend only on their
  behaviour and new users are embedded without retraining.
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
    masked_item_weight: weight of the masked-item loss added to the
      next-item loss; 0 trains next-item InfoNCE alone (the ablation). The
      default weighs both equally: untuned.
    masked_item_probability: share of the real history positions the
      masked-item objective masks (BERT4Rec's mask ratio 0.2).
    num_event_types: size of the behaviour-type vocabulary, index 0 = none;
      0 adds no type embedding.
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
  masked_item_weight: float = 1.0
  masked_item_probability: float = 0.2
  num_event_types: int = 0
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
    if self.masked_item_weight < 0:
      raise ValueError(f"masked_item_weight must be >= 0, got "
                       f"{self.masked_item_weight}")
    if not 0 < self.masked_item_probability <= 1:
      raise ValueError("masked_item_probability must be in (0, 1], got "
                       f"{self.masked_item_probability}")
    if self.masked_item_weight and self.item_bias:
      # The bias-appended towers serve the next-item scores only.
      raise ValueError("item_bias needs masked_item_weight=0")
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

  It also gives the masked-item objective its inputs: `sample_item_mask`
  draws the masked positions and `masked_item_queries` encodes the masked
  history bidirectionally with the same weights.

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
    self.config = config
    self.item_encoder = item_encoder
    self.catalogue_features = two_tower.catalogue_variables(catalogue_features)
    self.encoder = attention.CausalSequenceEncoder(
        features.HISTORY_LENGTH, config.embedding_dim, config.num_blocks,
        config.num_heads, config.dropout)
    self.interest_heads = mixture_of_representation.MultiInterestHeads(
        config.num_interests, config.interest_hidden_units)
    self.mlp = mlp.mlp(config.tower_units, "interest_mlp")
    # Created only when used, so that a model without them has exactly the
    # variables (and initial values) it had before they existed.
    self.mask_embedding = None
    if config.masked_item_weight:
      self.mask_embedding = self.add_weight(
          name="mask_embedding", shape=[config.embedding_dim],
          initializer=tf.keras.initializers.RandomNormal(stddev=0.02))
    self.event_embedding = None
    if config.num_event_types:
      self.event_embedding = tf.keras.layers.Embedding(
          config.num_event_types, config.embedding_dim, name="event_embedding")

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

  def history_vectors(self, inputs: Mapping[str, tf.Tensor],
                      item_mask: tf.Tensor | None = None) -> tf.Tensor:
    """What the encoder reads at each history position, `[batch, length, dim]`.

    The item's encoding plus its event type's embedding (where the inputs
    have a nonzero type); at the True positions of `item_mask`, the [MASK]
    vector in place of the item. A masked id is replaced by padding before
    encoding, so nothing of the masked item reaches the encoder.
    """
    history = inputs[features.HISTORY_ITEM_INDICES]
    if item_mask is not None:
      history = tf.where(item_mask, tf.constant(features.PADDING_INDEX,
                                                history.dtype), history)
    vectors = self.encode_items(history)
    if item_mask is not None:
      vectors = tf.where(item_mask[:, :, tf.newaxis], self.mask_embedding,
                         vectors)
    events = inputs.get(features.HISTORY_EVENT_INDICES)
    if self.event_embedding is not None and events is not None:
      has_type = tf.not_equal(events, features.PADDING_INDEX)
      vectors += (self.event_embedding(events)
                  * tf.cast(has_type, vectors.dtype)[:, :, tf.newaxis])
    return vectors

  def call(self, inputs: Mapping[str, tf.Tensor],
           training: bool = False) -> tf.Tensor:
    padding_mask = tf.not_equal(inputs[features.HISTORY_ITEM_INDICES],
                                features.PADDING_INDEX)
    sequence = self.encoder(self.history_vectors(inputs), padding_mask,
                            training=training)
    interests = self.interest_heads(sequence, padding_mask)
    return tf.math.l2_normalize(self.mlp(interests), axis=-1)

  def sample_item_mask(self, history: tf.Tensor) -> tf.Tensor:
    """`[batch, length]`, True at the positions the masked-item objective
    hides: each real position with probability `masked_item_probability`,
    padding never."""
    draws = tf.random.uniform(tf.shape(history))
    return (tf.not_equal(history, features.PADDING_INDEX)
            & (draws < self.config.masked_item_probability))

  def masked_item_queries(self, inputs: Mapping[str, tf.Tensor],
                          item_mask: tf.Tensor,
                          training: bool = False) -> tf.Tensor:
    """`[num_masked, out_dim]` unit vectors, one per True of `item_mask`.

    The bidirectional encoding of the masked history at each masked
    position (row-major order, as `tf.boolean_mask`), through the MLP of
    the K vectors, so it lives in the candidates' space.
    """
    padding_mask = tf.not_equal(inputs[features.HISTORY_ITEM_INDICES],
                                features.PADDING_INDEX)
    sequence = self.encoder(self.history_vectors(inputs, item_mask),
                            padding_mask, training=training, causal=False)
    return tf.math.l2_normalize(
        self.mlp(tf.boolean_mask(sequence, item_mask)), axis=-1)


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
  the loss differs because each user has K vectors, and adds the
  masked-item objective (module docstring).

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

  def _candidate_pool(self, positives: tf.Tensor, positive_ids: tf.Tensor,
                      negatives: tuple[tf.Tensor, tf.Tensor] | None):
    """Both objectives' InfoNCE candidates: the positives, then any uniform
    negatives, with their ids and (with `use_logq_correction`) the log of
    each one's probability in that mixed pool, else None."""
    candidates, candidate_ids, num_uniform = positives, positive_ids, 0
    if negatives is not None:
      candidates = tf.concat([positives, negatives[0]], axis=0)
      candidate_ids = tf.concat([positive_ids, negatives[1]], axis=0)
      num_uniform = self.config.num_uniform_negatives
    log_q = None
    if self.config.use_logq_correction:
      log_q = mixed_sampling_log_q(
          tf.gather(self.item_sampling_probability, candidate_ids),
          tf.shape(positive_ids)[0], num_uniform,
          tf.shape(self.item_sampling_probability)[0] - 2)
    return candidates, candidate_ids, log_q

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    positives = self.candidate_tower(inputs)
    interests = self.query_tower(inputs, training=training)
    negatives = None
    if self.config.num_uniform_negatives and training:
      negatives = self._uniform_negatives()
    loss = self._next_item_loss(inputs, positives, interests, negatives)
    if self.config.masked_item_weight:
      item_mask = self.query_tower.sample_item_mask(
          inputs[features.HISTORY_ITEM_INDICES])
      loss += self.config.masked_item_weight * self.masked_item_loss(
          inputs, item_mask, negatives, training)
    return loss

  def _next_item_loss(self, inputs: Mapping[str, tf.Tensor],
                      positives: tf.Tensor, interests: tf.Tensor,
                      negatives: tuple[tf.Tensor, tf.Tensor] | None
                      ) -> tf.Tensor:
    """InfoNCE of each row's next item given its K vectors."""
    candidates, candidate_ids, log_q = self._candidate_pool(
        positives, inputs[features.ITEM_INDEX], negatives)
    if self.config.training_scores == "per_candidate":
      return self.task.loss_from_scores(
          mixture_of_representation.label_aware_scores(
              interests, candidates, self.config.attention_power),
          log_q, candidate_ids)
    queries = tf.math.l2_normalize(
        mixture_of_representation.label_aware_attention(
            interests, positives, self.config.attention_power), axis=-1)
    return self.task(queries, candidates, log_q, candidate_ids)

  def masked_item_loss(self, inputs: Mapping[str, tf.Tensor],
                       item_mask: tf.Tensor,
                       negatives: tuple[tf.Tensor, tf.Tensor] | None = None,
                       training: bool = False) -> tf.Tensor:
    """InfoNCE of each masked history item given the rest of its history.

    The candidates are the batch's masked items (each one's positive and the
    others' negatives) plus `negatives`, logQ-corrected and accidental hits
    masked as in the next-item loss.

    Args:
      inputs: a batch of transformed features.
      item_mask: `[batch, length]` the masked positions
        (`GuimUserEncoder.sample_item_mask`); never padding.
      negatives: uniform negatives' embeddings and ids, or None.
      training: enables dropout.

    Returns:
      The mean loss over the masked positions; 0 when there are none.
    """
    targets = tf.boolean_mask(inputs[features.HISTORY_ITEM_INDICES], item_mask)

    def loss() -> tf.Tensor:
      queries = self.query_tower.masked_item_queries(inputs, item_mask,
                                                     training)
      positives = self.candidate_tower(
          {name: tf.gather(values, targets)
           for name, values in self.catalogue_features.items()})
      candidates, candidate_ids, log_q = self._candidate_pool(
          positives, targets, negatives)
      return self.task(queries, candidates, log_q, candidate_ids)

    return tf.cond(tf.size(targets) > 0, loss, lambda: tf.constant(0.0))

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
