"""SEMINAR: a pretrained search unit and approximate target attention.

After "Search Enhanced Multi-modal Interest Network and Approximate Retrieval
for Lifelong Sequential Recommendation" (arXiv 2407.10714). A user's history
is a sequence of (query, item) pairs:

- query embedding: the mean of its keyword embeddings;
- item embedding: a gated mix of its ID embedding and projections of its
  text/attribute tokens and (optional) image vector ("views");
- pair embedding: a gated mix of the query and item embeddings.

The pretraining search unit (PSU, `SeminarPretrainer`) learns these
embeddings and the target attention with three objectives, each switchable
by a zero weight:

- next pair prediction: target attention from the current pair over the
  pairs so far, then an MLP, scored against the next pair (in-batch InfoNCE);
- multi-modal alignment: InfoNCE between an item's ID, text and image views
  (temperature about 0.05);
- query-item relevance: InfoNCE of a query against the items of the same
  sequence, its own item being the positive.

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
import pathlib
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from models import hparams
from models.layers import mlp
from models.layers import pooling
from models.layers import product_quantization
from models.layers import target_attention

PADDING_INDEX = 0


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
    epochs: passes over the training windows (pipeline families).
    batch_size: windows per batch (pipeline families).
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

  def __post_init__(self):
    # A typo in `--hparam attention_scoring=...` fails before training, not
    # at export.
    ScoringMode(self.attention_scoring)


def derive_queries(items: np.ndarray, item_tokens: np.ndarray,
                   num_keywords: int, seed: int = 0) -> np.ndarray:
  """Derives a query per interaction from its item's text, as SEMINAR's
  public code does for Amazon data without search logs.

  Args:
    items: `[...]` item indices of interactions (0 = padding).
    item_tokens: `[num_items, T]` text/attribute token indices, 0 = pad.
    num_keywords: keywords per query: a random subset of the item's tokens.
    seed: seeds the choice.

  Returns:
    `[..., num_keywords]` keyword (token) indices, 0-padded.
  """
  rng = np.random.default_rng(seed)
  items = np.asarray(items)
  tokens = item_tokens[items.reshape(-1)]
  tokens = np.pad(tokens, [(0, 0), (0, max(0, num_keywords - tokens.shape[1]))])
  # Random keys on real tokens, +inf on padding: the smallest keys pick a
  # uniform subset of the real tokens.
  keys = np.where(tokens > 0, rng.random(tokens.shape), np.inf)
  chosen = np.argsort(keys, axis=1)[:, :num_keywords]
  queries = np.take_along_axis(tokens, chosen, axis=1)
  return queries.reshape(items.shape + (num_keywords,))


def load_image_vectors(path: str | pathlib.Path,
                       item_ids: Sequence[str]) -> np.ndarray:
  """Reads an `item_id -> vector` file into a table aligned with `item_ids`.

  The file has one item per line: the raw item id, a tab, then the vector's
  values separated by commas or spaces. Items without a line (and the
  padding row, id "") get the zero vector.

  Args:
    path: the file.
    item_ids: raw item id of every item index.

  Returns:
    `[len(item_ids), dim]` float32.
  """
  vectors: dict[str, np.ndarray] = {}
  for line_number, line in enumerate(
      pathlib.Path(path).read_text().splitlines(), 1):
    if not line.strip():
      continue
    item_id, _, values = line.partition("\t")
    vector = np.array(values.replace(",", " ").split(), np.float32)
    if vectors and len(vector) != len(next(iter(vectors.values()))):
      raise ValueError(f"{path}:{line_number}: vector of width {len(vector)}")
    vectors[item_id] = vector
  if not vectors:
    raise ValueError(f"{path} holds no vectors")
  width = len(next(iter(vectors.values())))
  table = np.zeros((len(item_ids), width), np.float32)
  for index, item_id in enumerate(item_ids):
    if item_id in vectors:
      table[index] = vectors[item_id]
  return table


def _info_nce(anchors: tf.Tensor, positives: tf.Tensor, ids: tf.Tensor,
              temperature: float) -> tf.Tensor:
  """In-batch InfoNCE on cosine similarity; equal ids are not negatives."""
  logits = tf.matmul(tf.math.l2_normalize(anchors, -1),
                     tf.math.l2_normalize(positives, -1),
                     transpose_b=True) / temperature
  same = tf.equal(ids[:, tf.newaxis], ids[tf.newaxis, :])
  diagonal = tf.eye(tf.shape(ids)[0], dtype=tf.bool)
  logits = tf.where(tf.logical_and(same, tf.logical_not(diagonal)), -1e9,
                    logits)
  labels = tf.range(tf.shape(ids)[0])
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels, logits))


def _apply(optimizer, tape: tf.GradientTape, loss: tf.Tensor,
           variables: Sequence[tf.Variable]) -> None:
  """One optimizer step on the variables the loss depends on: a disabled
  objective leaves some (e.g. the query gate) without a gradient."""
  gradients = tape.gradient(loss, variables)
  optimizer.apply_gradients([(gradient, variable) for gradient, variable
                             in zip(gradients, variables)
                             if gradient is not None])


class PairEncoder(tf.keras.layers.Layer):
  """Item, query and (query, item) pair embeddings.

  Args:
    item_tokens: `[num_items, T]` token indices of every item's text.
    num_tokens: token vocabulary size (padding included); queries share it.
    config: hyperparameters.
    image_vectors: `[num_items, I]` image vectors, or None.
  """

  def __init__(self, item_tokens: np.ndarray, num_tokens: int,
               config: SeminarConfig, image_vectors: np.ndarray | None = None,
               **kwargs):
    super().__init__(**kwargs)
    dim = config.embedding_dim
    self.config = config
    self.item_tokens = tf.constant(item_tokens, tf.int64)
    self.image_vectors = (None if image_vectors is None else
                          tf.constant(image_vectors, tf.float32))
    self.id_embedding = tf.keras.layers.Embedding(len(item_tokens), dim)
    self.token_embedding = tf.keras.layers.Embedding(num_tokens, dim)
    self.text_projection = tf.keras.layers.Dense(dim)
    self.image_projection = tf.keras.layers.Dense(dim)
    self.view_gate = tf.keras.layers.Dense(self.num_views)
    self.pair_gate = tf.keras.layers.Dense(dim, activation="sigmoid")
    self.pooling = pooling.MaskedMeanPooling(PADDING_INDEX)

  def _pool(self, indices: tf.Tensor) -> tf.Tensor:
    """Mean token embedding of `[..., T]` token indices, any leading rank."""
    width = tf.shape(indices)[-1]
    flat = tf.reshape(indices, [-1, width])
    pooled = self.pooling(flat, self.token_embedding(flat))
    return tf.reshape(pooled, tf.concat(
        [tf.shape(indices)[:-1], [self.token_embedding.output_dim]], 0))

  def build_weights(self) -> None:
    """Creates every weight, whichever objectives will use them."""
    items = tf.constant([[1]], tf.int64)
    self.pairs(self.items(items), tf.zeros([1, 1, 1], tf.int64))

  @property
  def num_views(self) -> int:
    return (1 + int(self.config.use_text) +
            int(self.image_vectors is not None))

  def views(self, items: tf.Tensor) -> list[tf.Tensor]:
    """ID, text (if used) and image (if given) views, each `[..., dim]`."""
    views = [self.id_embedding(items)]
    if self.config.use_text:
      tokens = tf.gather(self.item_tokens, items)
      views.append(self.text_projection(self._pool(tokens)))
    if self.image_vectors is not None:
      views.append(self.image_projection(tf.gather(self.image_vectors, items)))
    return views

  def items(self, items: tf.Tensor) -> tf.Tensor:
    """Gated mix of an item's views, `[..., dim]`."""
    views = self.views(items)
    if len(views) == 1:
      return views[0]
    gates = tf.nn.softmax(self.view_gate(tf.concat(views, -1)), axis=-1)
    return tf.einsum("...v,...vd->...d", gates, tf.stack(views, axis=-2))

  def queries(self, keywords: tf.Tensor) -> tf.Tensor:
    """Mean keyword embedding of `[..., Q]` keyword indices."""
    return self._pool(keywords)

  def pairs(self, item_vectors: tf.Tensor, keywords: tf.Tensor) -> tf.Tensor:
    """Gated mix of query and item embeddings; the item alone without
    queries."""
    if not self.config.use_queries:
      return item_vectors
    queries = self.queries(keywords)
    gate = self.pair_gate(tf.concat([item_vectors, queries], -1))
    return gate * item_vectors + (1.0 - gate) * queries


def _target_attention(config: SeminarConfig
                      ) -> target_attention.MultiHeadTargetAttention:
  """The attention the PSU pre-trains and the retriever restores."""
  return target_attention.MultiHeadTargetAttention(
      config.num_heads, config.embedding_dim, config.top_k, config.dropout,
      rerank_factor=config.pq_rerank_factor)


class SeminarPretrainer(tf.keras.Model):
  """The pretraining search unit (PSU) with its three objectives.

  Batches are dicts with `items` `[B, L]` (oldest first, right-padded) and
  `keywords` `[B, L, Q]`.
  """

  def __init__(self, encoder: PairEncoder, config: SeminarConfig):
    super().__init__(name="seminar_psu")
    self.config = config
    self.encoder = encoder
    self.attention = _target_attention(config)
    dim = config.embedding_dim
    self.next_pair_mlp = mlp.mlp((2 * dim, dim), "next_pair_mlp")
    self.next_pair_mlp.build([None, 2 * dim])
    self.loss_trackers = {
        name: tf.keras.metrics.Mean(name)
        for name in ("loss", "next_pair", "alignment", "relevance")}

  @property
  def metrics(self):
    return list(self.loss_trackers.values())

  def losses_of(self, batch: Mapping[str, tf.Tensor],
                training: bool = False) -> dict[str, tf.Tensor]:
    """Each enabled objective's loss."""
    config = self.config
    items, keywords = batch["items"], batch["keywords"]
    real = tf.not_equal(items, PADDING_INDEX)
    item_vectors = self.encoder.items(items)
    losses = {}
    if config.next_pair_weight:
      pairs = self.encoder.pairs(item_vectors, keywords)
      history, history_items = pairs[:, :-1], item_vectors[:, :-1]
      state = self.attention(
          history, history, target_attention.causal_history_mask(real[:, :-1]),
          selection_history=history_items, training=training)
      predicted = self.next_pair_mlp(tf.concat([state, history], -1))
      has_next = tf.logical_and(real[:, :-1], real[:, 1:])
      losses["next_pair"] = _info_nce(
          tf.boolean_mask(predicted, has_next),
          tf.boolean_mask(pairs[:, 1:], has_next),
          tf.boolean_mask(items[:, 1:], has_next), config.temperature)
    real_items = tf.boolean_mask(items, real)
    if config.alignment_weight and self.encoder.num_views > 1:
      views = [tf.boolean_mask(view, real)
               for view in self.encoder.views(items)]
      pairs_of_views = [(a, b) for i, a in enumerate(views)
                        for b in views[i + 1:]]
      losses["alignment"] = tf.add_n([
          0.5 * (_info_nce(a, b, real_items, config.alignment_temperature) +
                 _info_nce(b, a, real_items, config.alignment_temperature))
          for a, b in pairs_of_views]) / len(pairs_of_views)
    if config.relevance_weight and config.use_queries:
      queries = tf.math.l2_normalize(self.encoder.queries(keywords), -1)
      logits = tf.einsum("btd,bld->btl", queries,
                         tf.math.l2_normalize(item_vectors, -1))
      # In-sequence negatives: the sequence's other items, not its padding
      # and not other occurrences of the positive item.
      same_item = tf.equal(items[:, :, tf.newaxis], items[:, tf.newaxis, :])
      length = tf.shape(items)[1]
      own = tf.eye(length, dtype=tf.bool)[tf.newaxis]
      allowed = tf.logical_and(real[:, tf.newaxis, :],
                               tf.logical_or(own, tf.logical_not(same_item)))
      logits = tf.where(allowed, logits / config.temperature, -1e9)
      labels = tf.broadcast_to(tf.range(length), tf.shape(items))
      losses["relevance"] = tf.reduce_mean(tf.boolean_mask(
          tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits),
          real))
    return losses

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
    _apply(self.optimizer, tape, total, self.trainable_variables)
    self.loss_trackers["loss"].update_state(total)
    for name, loss in losses.items():
      self.loss_trackers[name].update_state(loss)
    return {name: tracker.result()
            for name, tracker in self.loss_trackers.items()}


class SeminarRetriever(tf.keras.Model):
  """TWIN-style target attention over (query, item) pairs, PSU-initialised.

  A candidate's score for a user is the cosine of the candidate's item
  embedding with the user vector for that candidate: the target attention
  output from the candidate over the history pairs (top-K selected on item
  keys) plus a projection of the most recent pair, divided by the
  temperature, plus a learned item bias (popularity).

  Training batches are dicts with `items` `[B, L]` and `keywords`
  `[B, L, Q]`; every position predicts the next item against
  `config.num_negatives` uniform negatives.
  """

  def __init__(self, encoder: PairEncoder, config: SeminarConfig):
    super().__init__(name="seminar")
    self.config = config
    self.encoder = encoder
    self.attention = _target_attention(config)
    self.recent_projection = tf.keras.layers.Dense(config.embedding_dim)
    self.item_bias = tf.keras.layers.Embedding(
        encoder.id_embedding.input_dim, 1, embeddings_initializer="zeros")
    self.loss_tracker = tf.keras.metrics.Mean("loss")
    self.item_key_codes: tf.Tensor | None = None
    self.key_codebooks: tf.Tensor | None = None

  @property
  def metrics(self):
    return [self.loss_tracker]

  def restore_pretrained(self, pretrainer: SeminarPretrainer) -> None:
    """Copies the PSU's encoder and target attention weights."""
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
    real = tf.not_equal(items, PADDING_INDEX)
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
      accidental = tf.equal(items[:, 1:, tf.newaxis], negative_ids)
      negative_logits = tf.where(accidental, -1e9, negative_logits)
      logits = tf.concat([positive_logits[..., tf.newaxis], negative_logits],
                         -1)
      has_next = tf.logical_and(real[:, :-1], real[:, 1:])
      loss = tf.reduce_mean(tf.boolean_mask(
          tf.nn.sparse_softmax_cross_entropy_with_logits(
              tf.zeros_like(items[:, 1:], tf.int32), logits), has_next))
    _apply(self.optimizer, tape, loss, self.trainable_variables)
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
    real = tf.not_equal(items, PADDING_INDEX)
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
    real = tf.not_equal(items, PADDING_INDEX)
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


def build_seminar(item_tokens: np.ndarray, num_tokens: int,
                  config: SeminarConfig,
                  image_vectors: np.ndarray | None = None
                  ) -> tuple[SeminarPretrainer, SeminarRetriever]:
  """The PSU and the downstream retriever, each with its own encoder."""
  encoders = [PairEncoder(item_tokens, num_tokens, config, image_vectors)
              for _ in range(2)]
  return (SeminarPretrainer(encoders[0], config),
          SeminarRetriever(encoders[1], config))
