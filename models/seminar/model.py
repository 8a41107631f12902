"""SEMINAR: hyperparameters, and the retriever with approximate attention.

After "Search Enhanced Multi-modal Interest Network and Approximate Retrieval
for Lifelong Sequential Recommendation" (arXiv 2407.10714). A user's history
is a sequence of (query, item) pairs, embedded by
`seminar_encoder.PairEncoder`. The pretraining search unit
(`seminar_psu.SeminarPretrainer`) learns the encoder and the target
attention; `seminar_psu.build_seminar` builds it with this module's
retriever.

`SeminarRetriever` is the downstream model: it restores the PSU's encoder
and attention, and scores a candidate item by multi-head target attention
from the candidate over the user's pairs, TWIN-style: relevance on item keys
selects the top-K history items, exact attention runs over those. At export
the item keys are product-quantised once per item (`quantize_item_keys`), and
the selection can use lookup-table scores on those codes instead of exact
keys (`ScoringMode.PQ`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Sequence

import numpy as np
import tensorflow as tf

from data import features
from models import hparams
from models.layers import contrastive
from models.layers import product_quantization
from models.layers import target_attention
from models.seminar import encoder as seminar_encoder


class ScoringMode(str, enum.Enum):
  """How the top-K history items of a target are selected.

  `PQ_XLA` is `PQ` with the lookup-table scoring compiled by XLA: several
  times faster on CPU, but the SavedModel then needs a runtime with XLA JIT
  (see `product_quantization.xla_lookup_scores`).
  """
  EXACT = "exact"
  PQ = "pq"
  PQ_XLA = "pq_xla"

  @property
  def quantized(self) -> bool:
    return self != ScoringMode.EXACT


@dataclasses.dataclass(frozen=True)
class SeminarConfig(hparams.HParams):
  """Hyperparameters of the PSU and the downstream retriever.

  Attributes:
    embedding_dim: width of every embedding and of the attention.
    num_heads: attention heads.
    top_k: history items each target attends to (TWIN's ESU size).
    dropout: dropout on attention weights.
    use_queries: mix query embeddings into the history pairs; off, a pair is
      its item (the TWIN-style baseline).
    use_text: mix the text/attribute view into item embeddings.
    next_pair_weight: weight of the PSU's next pair loss; 0 disables it.
    alignment_weight: weight of the multi-modal alignment loss.
    relevance_weight: weight of the query-item relevance loss.
    alignment_temperature: InfoNCE temperature of the alignment loss.
    temperature: softmax temperature of the next pair, relevance and
      downstream losses (over cosine similarities).
    num_negatives: uniform negative items per downstream batch.
    learning_rate: Adam learning rate of both stages.
    pq_subspaces: product quantiser subspaces of the item keys.
    pq_centroids: centroids per subspace.
    pq_rerank_factor: with PQ scoring, the lookup-table scores shortlist
      `pq_rerank_factor * top_k` history items and their exact relevance
      picks the `top_k`; 1 selects by the PQ scores alone. 8 kept >= 0.95 of
      the exact top-K on 10k-item histories of distinct items at 4.9-6.9x
      the speed of exact selection (XLA, four runs), and 4 already matched it
      on real MovieLens-100K histories (benchmarks/README.md).
    num_keywords: keywords of a query derived from item text, for
      interactions without a search query (pipeline families).
    attention_scoring: "exact", "pq" or "pq_xla" (`ScoringMode`): how the
      exported model selects the top-K history items (pipeline `seminar`
      family).
    epochs: the most passes over the training windows (pipeline families,
      which keep the epoch that validates best: `models.early_stopping`).
    batch_size: windows per batch (pipeline families).
    early_stopping_patience: the pipeline families stop after this many
      epochs in a row without a better validation score (the PSU's loss,
      the fine-tuned ranker's AUC).
  """
  embedding_dim: int = 64
  num_heads: int = 2
  top_k: int = 20
  dropout: float = 0.1
  use_queries: bool = True
  use_text: bool = True
  next_pair_weight: float = 1.0
  alignment_weight: float = 1.0
  relevance_weight: float = 1.0
  alignment_temperature: float = 0.05
  temperature: float = 0.1
  num_negatives: int = 256
  learning_rate: float = 0.002
  pq_subspaces: int = 16
  pq_centroids: int = 256
  pq_rerank_factor: int = 8
  num_keywords: int = 3
  attention_scoring: str = ScoringMode.EXACT.value
  epochs: int = 2
  batch_size: int = 64
  early_stopping_patience: int = 2

  def __post_init__(self):
    # A typo in `--hparam attention_scoring=...` fails before training, not
    # at export.
    ScoringMode(self.attention_scoring)


def apply_present_gradients(optimizer, tape: tf.GradientTape,
                            loss: tf.Tensor,
                            variables: Sequence[tf.Variable]) -> None:
  """One optimizer step on the variables the loss depends on: a disabled
  objective leaves some (e.g. the query gate) without a gradient."""
  gradients = tape.gradient(loss, variables)
  optimizer.apply_gradients([(gradient, variable) for gradient, variable
                             in zip(gradients, variables)
                             if gradient is not None])


def build_target_attention(config: SeminarConfig
                           ) -> target_attention.MultiHeadTargetAttention:
  """The attention the PSU pre-trains and the retriever restores."""
  return target_attention.MultiHeadTargetAttention(
      config.num_heads, config.embedding_dim, config.top_k, config.dropout,
      rerank_factor=config.pq_rerank_factor)


class SeminarRetriever(tf.keras.Model):
  """TWIN-style target attention over (query, item) pairs, PSU-initialised.

  A candidate's score for a user is the cosine of the candidate's item
  embedding with the user vector for that candidate: the target attention
  output from the candidate over the history pairs (top-K selected on item
  keys) plus a projection of the most recent pair, divided by the
  temperature, plus a learned item bias (popularity; zero until
  `start_item_bias_at_popularity`).

  Training batches are dicts with `items` `[B, L]` and `keywords`
  `[B, L, Q]`; every position predicts the next item against
  `config.num_negatives` uniform negatives.
  """

  def __init__(self, encoder: seminar_encoder.PairEncoder,
               config: SeminarConfig):
    super().__init__(name="seminar")
    self.config = config
    self.encoder = encoder
    self.attention = build_target_attention(config)
    self.recent_projection = tf.keras.layers.Dense(config.embedding_dim)
    self.item_bias = tf.keras.layers.Embedding(
        encoder.id_embedding.input_dim, 1, embeddings_initializer="zeros")
    self.loss_tracker = tf.keras.metrics.Mean("loss")
    self.item_key_codes: tf.Tensor | None = None
    self.key_codebooks: tf.Tensor | None = None

  @property
  def metrics(self):
    return [self.loss_tracker]

  def start_item_bias_at_popularity(self, train_counts: np.ndarray) -> None:
    """Starts every item's bias at its log train frequency.

    Trained against uniform negatives, the bias converges to the item's log
    popularity, several units apart between head and tail items; from zero,
    Adam moves it by about one learning rate per step, so a few hundred
    steps leave an ids-only model (the TWIN-style baseline) without the
    popularity that MostPop ranks by. As the two-tower's `item_bias`,
    `log(p + p_min)`: an item never seen in train starts at the floor.

    Args:
      train_counts: `[num_items]` train interactions per item index.
    """
    counts = np.asarray(train_counts, np.float64)
    probability = counts / max(counts.sum(), 1.0)
    smallest = probability[probability > 0].min(initial=1.0)
    if not self.item_bias.built:
      self.item_bias.build((None,))
    self.item_bias.set_weights([np.log(probability + smallest)[:, np.newaxis]])

  def restore_pretrained(self, pretrainer: tf.keras.Model) -> None:
    """Copies the encoder and target attention weights of the PSU
    (`seminar_psu.SeminarPretrainer`)."""
    dim = self.config.embedding_dim
    for model in (self, pretrainer):
      model.encoder.build_weights()
      model.attention(tf.zeros([1, 1, dim]), tf.zeros([1, 1, dim]),
                      tf.ones([1, 1], tf.bool))
    self.encoder.set_weights(pretrainer.encoder.get_weights())
    self.attention.set_weights(pretrainer.attention.get_weights())

  def _logits(self, candidates: tf.Tensor, attended: tf.Tensor,
              recent: tf.Tensor, candidate_ids: tf.Tensor) -> tf.Tensor:
    """`attended` `[B, N, d]` or `[B, T, N, d]`, `recent` broadcastable."""
    user = tf.math.l2_normalize(attended + recent, -1)
    cosine = tf.reduce_sum(user * tf.math.l2_normalize(candidates, -1), -1)
    bias = tf.squeeze(self.item_bias(candidate_ids), -1)
    return cosine / self.config.temperature + bias

  def _history(self, items, keywords):
    item_vectors = self.encoder.items(items)
    return item_vectors, self.encoder.pairs(item_vectors, keywords)

  def train_step(self, batch):
    items, keywords = batch["items"], batch["keywords"]
    real = tf.not_equal(items, features.PADDING_INDEX)
    num_items = self.encoder.id_embedding.input_dim
    negative_ids = tf.random.uniform([self.config.num_negatives], 1,
                                     num_items, dtype=items.dtype)
    with tf.GradientTape() as tape:
      item_vectors, pairs = self._history(items, keywords)
      history, history_items = pairs[:, :-1], item_vectors[:, :-1]
      mask = target_attention.causal_history_mask(real[:, :-1])
      recent = self.recent_projection(history)
      positives = item_vectors[:, 1:]
      positive_logits = self._logits(
          positives,
          self.attention(positives, history, mask,
                         selection_history=history_items, training=True),
          recent, items[:, 1:])
      negatives = self.encoder.items(negative_ids)
      length = tf.shape(history)[1]
      num_negatives = self.config.num_negatives
      # Every position's negatives attend with that position's mask.
      negative_mask = tf.reshape(
          tf.repeat(mask, num_negatives, axis=1),
          [tf.shape(items)[0], length * num_negatives, length])
      # Negatives are shared by the batch: `[L * N, d]` targets.
      attended = self.attention(
          tf.tile(negatives, [length, 1]), history, negative_mask,
          selection_history=history_items, training=True)
      attended = tf.reshape(attended, [tf.shape(items)[0], length,
                                       num_negatives, -1])
      negative_logits = self._logits(negatives, attended,
                                     recent[:, :, tf.newaxis],
                                     negative_ids)
      # Column 0 is the positive; a negative equal to it is masked.
      targets = items[:, 1:]
      logits = tf.concat([positive_logits[..., tf.newaxis], negative_logits],
                         -1)
      candidate_ids = tf.concat(
          [targets[..., tf.newaxis],
           tf.broadcast_to(negative_ids, tf.shape(negative_logits))], -1)
      has_next = tf.logical_and(real[:, :-1], real[:, 1:])
      loss = tf.reduce_mean(tf.boolean_mask(contrastive.softmax_losses(
          logits, tf.zeros_like(targets), targets, candidate_ids), has_next))
    apply_present_gradients(self.optimizer, tape, loss,
                            self.trainable_variables)
    self.loss_tracker.update_state(loss)
    return {"loss": self.loss_tracker.result()}

  def quantize_item_keys(self, seed: int = 0) -> None:
    """Product-quantises every item's attention key, once per item.

    Codes are stored as one byte each (at most 256 centroids).
    """
    if self.config.pq_centroids > 256:
      raise ValueError("at most 256 centroids fit one-byte codes")
    num_items = self.encoder.id_embedding.input_dim
    keys = self.attention.keys(self.encoder.items(tf.range(num_items)))
    self.key_codebooks = tf.constant(product_quantization.train_codebooks(
        keys.numpy()[1:], self.config.pq_subspaces,
        min(self.config.pq_centroids, num_items - 1), seed=seed))
    self.item_key_codes = tf.cast(
        product_quantization.encode(keys, self.key_codebooks), tf.uint8)

  def approximate_relevance(self, candidates: tf.Tensor,
                            history_items: tf.Tensor,
                            xla: bool = False) -> tf.Tensor:
    """PQ lookup-table relevance `[B, N, L]` of candidate vectors
    `[B, N, d]` to history item indices `[B, L]`, the lookups compiled by
    XLA if `xla`."""
    if self.item_key_codes is None:
      raise ValueError("call quantize_item_keys() first")
    batch, count = tf.shape(candidates)[0], tf.shape(candidates)[1]
    tables = product_quantization.lookup_tables(
        tf.reshape(self.attention.selection_queries(candidates),
                   [batch * count, -1]), self.key_codebooks)
    codes = tf.repeat(tf.gather(self.item_key_codes, history_items), count,
                      axis=0)
    lookup_scores = (product_quantization.xla_lookup_scores if xla else
                     product_quantization.lookup_scores)
    return tf.reshape(lookup_scores(tables, codes), [batch, count, -1])

  def score(self, items: tf.Tensor, keywords: tf.Tensor,
            candidate_ids: tf.Tensor,
            mode: ScoringMode = ScoringMode.EXACT) -> tf.Tensor:
    """Scores candidates for users.

    Args:
      items: `[B, L]` history item indices, oldest first, right-padded.
      keywords: `[B, L, Q]` the history's query keywords.
      candidate_ids: `[B, N]` per-user candidates, or `[N]` shared by all.
      mode: exact or PQ-approximate (plain or XLA) top-K selection.

    Returns:
      `[B, N]` scores.
    """
    real = tf.not_equal(items, features.PADDING_INDEX)
    item_vectors, pairs = self._history(items, keywords)
    lengths = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    recent = tf.gather(self.recent_projection(pairs),
                       tf.maximum(lengths - 1, 0), batch_dims=1)
    recent *= tf.cast(lengths > 0, recent.dtype)[:, tf.newaxis]
    candidates = self.encoder.items(candidate_ids)
    selection_scores = None
    mode = ScoringMode(mode)
    if mode.quantized:
      if candidates.shape.rank == 2:
        candidates = tf.broadcast_to(
            candidates, [tf.shape(items)[0]] + candidates.shape.as_list())
      selection_scores = self.approximate_relevance(
          candidates, items, xla=mode == ScoringMode.PQ_XLA)
    attended = self.attention(candidates, pairs, real,
                              selection_history=item_vectors,
                              selection_scores=selection_scores)
    return self._logits(candidates, attended, recent[:, tf.newaxis],
                        candidate_ids)

  def score_selected(self, items: tf.Tensor, keywords: tf.Tensor,
                     candidate_ids: tf.Tensor,
                     mode: ScoringMode = ScoringMode.EXACT) -> tf.Tensor:
    """`score` for a few candidates per user over long histories.

    Equal to `score`, but embeds only the history items each step needs:
    exact selection embeds every history item for its relevance, PQ
    selection scores every item from its codes and embeds only the
    `rerank_factor * top_k` shortlist; pairs (queries included) are built
    for the K selected items and the most recent one only. `score` instead
    attends from every candidate over the whole masked history, which is
    cheaper for many candidates (a catalogue) over short histories.

    Args:
      items: `[B, L]` history item indices, oldest first, right-padded.
      keywords: `[B, L, Q]` the history's query keywords.
      candidate_ids: `[B, N]` per-user candidates.
      mode: exact or PQ-approximate (plain or XLA) top-K selection.

    Returns:
      `[B, N]` scores.
    """
    real = tf.not_equal(items, features.PADDING_INDEX)
    candidates = self.encoder.items(candidate_ids)
    allowed = real[:, tf.newaxis]
    mode = ScoringMode(mode)
    if mode.quantized:
      queries = self.attention.selection_queries(candidates)

      def exact_at(shortlist):
        keys = self.attention.keys(self.encoder.items(
            tf.gather(items, shortlist, batch_dims=1)))
        return tf.einsum("bnd,bnsd->bns", queries, keys)

      positions, selected = target_attention.rerank_positions(
          self.approximate_relevance(candidates, items,
                                     xla=mode == ScoringMode.PQ_XLA),
          allowed, exact_at, self.attention.top_k,
          self.attention.rerank_factor)
      selected_vectors = self.encoder.items(
          tf.gather(items, positions, batch_dims=1))
    else:
      history_vectors = self.encoder.items(items)
      positions, selected = target_attention.top_k_positions(
          self.attention.relevance(candidates, history_vectors), allowed,
          self.attention.top_k)
      selected_vectors = tf.gather(history_vectors, positions, batch_dims=1)
    selected_pairs = self.encoder.pairs(
        selected_vectors, tf.gather(keywords, positions, batch_dims=1))
    attended = self.attention.attend_selected(candidates, selected_pairs,
                                              selected)
    lengths = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    last = tf.maximum(lengths - 1, 0)
    recent = self.recent_projection(self.encoder.pairs(
        self.encoder.items(tf.gather(items, last, batch_dims=1)),
        tf.gather(keywords, last, batch_dims=1)))
    recent *= tf.cast(lengths > 0, recent.dtype)[:, tf.newaxis]
    return self._logits(candidates, attended, recent[:, tf.newaxis],
                        candidate_ids)

