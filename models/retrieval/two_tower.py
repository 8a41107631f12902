"""TFRS two-tower retrieval model, and the retrieval task other towers reuse.

The query tower sees the user id, the mean of the user's history items and the
request time. The candidate tower sees the item id, its title tokens and its
categories. Both towers share the item-id embedding, so history pooling and
candidate scoring live in one space. Training uses in-batch softmax with the
logQ correction: each in-batch candidate's logit is reduced by the log of its
sampling probability, which removes the popularity bias that in-batch
negatives otherwise introduce (Yi et al., RecSys 2019).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import distribution
from models import hparams
from models.layers import mlp
from models.layers import pooling

_HOURS_PER_DAY = 24
_DAYS_PER_WEEK = 7
# Above this many items the retrieval Trainers train with lazy Adam. Below
# it Adam's dense pass over the item table is cheap (10k x 64 floats), and
# the shared datasets (MovieLens-100K 1.7k items, Amazon Grocery 8.7k) keep
# the optimizer their published results were measured with.
LAZY_ADAM_MIN_ITEMS = 10_000


# The budget and minimum improvement of the sequence families that train
# longer than the two-tower (GUIM, GMN): a budget, not a stopping rule, since
# validation stops them before it. The two-tower's budget of 8 stopped GUIM
# on Amazon Grocery while its validation still rose (benchmarks/README.md,
# "Time to quality of every retrieval family"); a gain of less than 0.2
# points of Recall@50 does not renew the patience, as for SASRec, so a curve
# that creeps ends.
VALIDATED_EPOCH_BUDGET = 50
MIN_RECALL_IMPROVEMENT = 0.002


@dataclasses.dataclass(frozen=True)
class TwoTowerConfig(hparams.HParams):
  """Hyperparameters of the two-tower model.

  Attributes:
    embedding_dim: size of every id/token embedding.
    tower_units: hidden layer sizes of both towers; the last is the output.
    temperature: softmax temperature over cosine similarities.
    learning_rate: Adam learning rate.
    epochs: the most passes over the train split; the pipeline's Trainer
      keeps the epoch with the best validation Recall@50.
    early_stopping_patience: the pipeline's Trainer stops after this many
      epochs in a row without a better validation Recall@50.
    early_stopping_min_improvement: how much better (absolute Recall@50)
      than the score that last renewed the patience an epoch must be to
      renew it (`training.fit_best_epoch`).
    plateau_decay_factor: if set, the pipeline's Trainer multiplies the
      learning rate by it after every `plateau_decay_after` epochs in a row
      that do not renew the patience (`training.PlateauDecay`); None keeps
      the rate constant.
    plateau_decay_after: see `plateau_decay_factor`.
    lazy_adam: train with `lazy_adam.LazyAdam`, which updates only the
      embedding rows a batch touched, so that a step's optimizer cost does
      not grow with the catalogue; None (default) with it above
      `LAZY_ADAM_MIN_ITEMS` items and with Adam up to it (`uses_lazy_adam`).
    batch_size: examples per batch; also the number of in-batch negatives.
    use_logq_correction: subtract log sampling probability from logits.
    num_uniform_negatives: items sampled uniformly from the catalogue per
      batch and added to the in-batch negatives (mixed negative sampling,
      Yang et al., WWW 2020), so that tail items are seen as negatives too.
    full_catalogue_softmax: score every catalogue item (padding aside) as a
      candidate of every query instead of the sampled pool: exact softmax
      cross-entropy, which made SASRec beat BERT4Rec (Klenitskiy & Vasilev,
      RecSys 2023). Affordable for catalogues of some 10k items; nothing is
      sampled, so `num_uniform_negatives` and `use_logq_correction` are
      ignored.
    use_request_context: join the request's hour, weekday and timestamp to
      the query; off where requests carry no time (offline leave-one-out
      benchmarks) and for the ablation that measures what time adds.
    item_bias: add a learned per-item bias to every logit (cosine /
      temperature + b_item), started at the item's log train frequency.
      Unit vectors can express popularity only through a shared direction;
      the bias frees them of it. The towers then output one more
      coordinate (the temperature, the bias), so serving stays a dot
      product; see `ItemBiasAppended`.
  """
  embedding_dim: int = 64
  tower_units: Sequence[int] = (128, 64)
  temperature: float = 0.05
  learning_rate: float = 0.003
  epochs: int = 8
  early_stopping_patience: int = 2
  early_stopping_min_improvement: float = 0.0
  plateau_decay_factor: Optional[float] = None
  plateau_decay_after: int = 2
  lazy_adam: Optional[bool] = None
  batch_size: int = 512
  use_logq_correction: bool = True
  num_uniform_negatives: int = 0
  full_catalogue_softmax: bool = False
  use_request_context: bool = True
  item_bias: bool = False


def uses_lazy_adam(config: TwoTowerConfig, num_items: int) -> bool:
  """Whether `config` trains a catalogue of `num_items` with lazy Adam."""
  if config.lazy_adam is None:
    return num_items > LAZY_ADAM_MIN_ITEMS
  return config.lazy_adam


@dataclasses.dataclass(frozen=True)
class VocabularySizes:
  """Embedding input sizes, padding and OOV included."""
  users: int
  items: int
  title_tokens: int
  categories: int


def _l2_normalize(x):
  return tf.math.l2_normalize(x, axis=-1)


class QueryTower(tf.keras.Model):
  """Embeds a user request: id, pooled history and time context."""

  def __init__(self, vocab: VocabularySizes, item_embedding: tf.keras.layers.Layer,
               config: TwoTowerConfig):
    super().__init__(name="query_tower")
    self.user_embedding = tf.keras.layers.Embedding(vocab.users, config.embedding_dim)
    self.item_embedding = item_embedding
    self.history_pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.use_request_context = config.use_request_context
    self.hour_embedding = tf.keras.layers.Embedding(_HOURS_PER_DAY, 8)
    self.day_embedding = tf.keras.layers.Embedding(_DAYS_PER_WEEK, 4)
    self.mlp = mlp.mlp(config.tower_units, "query_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    history = inputs[features.HISTORY_ITEM_INDICES]
    parts = [self.user_embedding(inputs[features.USER_INDEX]),
             self.history_pooling(history, self.item_embedding(history))]
    if self.use_request_context:
      parts += [
          self.hour_embedding(inputs[features.HOUR_OF_DAY]),
          self.day_embedding(inputs[features.DAY_OF_WEEK]),
          tf.reshape(tf.cast(inputs[features.TIMESTAMP_Z], tf.float32), [-1, 1]),
      ]
    return _l2_normalize(self.mlp(tf.concat(parts, axis=-1)))


class CandidateTower(tf.keras.Model):
  """Embeds an item: id, pooled title tokens and pooled categories."""

  def __init__(self, vocab: VocabularySizes, item_embedding: tf.keras.layers.Layer,
               config: TwoTowerConfig):
    super().__init__(name="candidate_tower")
    self.item_embedding = item_embedding
    self.title_embedding = tf.keras.layers.Embedding(vocab.title_tokens,
                                                     config.embedding_dim)
    self.category_embedding = tf.keras.layers.Embedding(vocab.categories,
                                                        config.embedding_dim)
    self.title_pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.category_pooling = pooling.MaskedMeanPooling(features.PADDING_INDEX)
    self.mlp = mlp.mlp(config.tower_units, "candidate_mlp")

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    titles = inputs[features.TITLE_TOKEN_INDICES]
    categories = inputs[features.CATEGORY_INDICES]
    joined = tf.concat([
        self.item_embedding(inputs[features.ITEM_INDEX]),
        self.title_pooling(titles, self.title_embedding(titles)),
        self.category_pooling(categories, self.category_embedding(categories)),
    ], axis=-1)
    return _l2_normalize(self.mlp(joined))


class TemperatureAppended(tf.keras.Model):
  """A query tower whose vectors end in one more coordinate, the temperature.

  Args:
    tower: features -> `[..., dim]` query vectors.
    temperature: the softmax temperature of the retrieval task.
  """

  def __init__(self, tower: tf.keras.Model, temperature: float):
    super().__init__(name="temperature_appended")
    self.tower = tower
    self.temperature = temperature

  def call(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    query = self.tower(inputs, training=training)
    return tf.concat([query, tf.ones_like(query[..., :1]) * self.temperature],
                     axis=-1)


class ItemBiasAppended(tf.keras.Model):
  """A candidate tower whose vectors end in a learned per-item bias.

  Against a `TemperatureAppended` query `[q, T]` the dot product is
  `q.c + T * b`, so the retrieval task's logit (divided by `T`) is
  `q.c / T + b`, and a dot-product index serves it unchanged. The bias
  starts at the log train frequency, smoothed by the smallest positive
  frequency (`log(p + p_min)`, add-one smoothing when some item was seen
  once), so unseen items start at the floor, not at minus infinity: from
  zeros, Adam (about one learning rate per step) would need thousands of
  steps to reach the several units of log-popularity between head and
  tail items.

  Args:
    tower: features -> `[batch, dim]` candidate vectors.
    item_sampling_probability: `[num_items]` train frequency of each item.
  """

  def __init__(self, tower: tf.keras.Model, item_sampling_probability):
    super().__init__(name="item_bias_appended")
    self.tower = tower
    probability = np.asarray(item_sampling_probability, np.float64)
    smallest = probability[probability > 0].min(initial=1.0)
    self.bias = tf.keras.layers.Embedding(
        len(probability), 1, name="item_bias",
        embeddings_initializer=tf.keras.initializers.Constant(
            np.log(probability + smallest)[:, np.newaxis]))

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    return tf.concat([self.tower(inputs),
                      self.bias(inputs[features.ITEM_INDEX])], axis=-1)


def catalogue_variables(catalogue_features: Mapping[str, object]
                        ) -> dict[str, tf.Variable]:
  """Candidate features of every item index as non-trainable variables.

  Variables, not constants: an exported tower that reads them keeps them in
  its checkpoint, so its graph does not grow with the catalogue (a million
  items' title and category indices are 192 MB, past the 2 GB GraphDef limit
  at ten million). Values that are variables already are kept as they are,
  so the towers and losses of one model share a single copy.

  Args:
    catalogue_features: feature name -> `[item indices, ...]` values, arrays
      or variables.
  """
  return {name: values if isinstance(values, tf.Variable) else
          tf.Variable(values, trainable=False, name=f"catalogue_{name}")
          for name, values in catalogue_features.items()}


def mixed_sampling_probability(train_probability: tf.Tensor,
                               batch_size: tf.Tensor, num_uniform,
                               num_items: tf.Tensor) -> tf.Tensor:
  """Probability that one draw into the candidate pool is each candidate.

  The pool is `batch_size` draws from the train distribution (the in-batch
  positives) and `num_uniform` uniform draws over the `num_items` real items.
  It stays a probability, as TFRS (which clips it to [1e-6, 1]) expects.

  Args:
    train_probability: `[N]` train-split probability of each candidate.
    batch_size: number of in-batch positives.
    num_uniform: number of uniform draws.
    num_items: number of items the uniform draws come from.

  Returns:
    `[N]` probabilities.
  """
  batch_size = tf.cast(batch_size, tf.float32)
  num_uniform = tf.cast(num_uniform, tf.float32)
  uniform_probability = 1.0 / tf.cast(num_items, tf.float32)
  return ((batch_size * train_probability + num_uniform * uniform_probability)
          / (batch_size + num_uniform))


def appended_towers(query_tower: tf.keras.Model,
                    candidate_tower: tf.keras.Model, item_sampling_probability,
                    config: TwoTowerConfig
                    ) -> tuple[tf.keras.Model, tf.keras.Model]:
  """The towers `RetrievalModel` trains and serving exports: with
  `config.item_bias`, wrapped in `TemperatureAppended` and
  `ItemBiasAppended`; otherwise as they are."""
  if not config.item_bias:
    return query_tower, candidate_tower
  return (TemperatureAppended(query_tower, config.temperature),
          ItemBiasAppended(candidate_tower, item_sampling_probability))


class RetrievalModel(tfrs.Model):
  """In-batch (optionally mixed) softmax retrieval with logQ correction.

  Args:
    query_tower: transformed features -> `[batch, dim]` unit vectors.
    candidate_tower: transformed features -> `[batch, dim]` unit vectors.
      With `config.item_bias` both are wrapped (`TemperatureAppended`,
      `ItemBiasAppended`), and `query_tower`/`candidate_tower` are the
      wrapped, `dim + 1`-wide towers that serving exports.
    catalogue_features: transformed candidate features of every item index
      (`ItemCatalogue.candidate_features`, or their `catalogue_variables`);
      the source of uniform negatives.
    item_sampling_probability: `[num_items]` probability that an item is a
      positive in the train split.
    config: hyperparameters.
  """

  def __init__(self, query_tower: tf.keras.Model,
               candidate_tower: tf.keras.Model,
               catalogue_features: Mapping[str, tf.Tensor],
               item_sampling_probability, config: TwoTowerConfig):
    super().__init__()
    self.config = config
    self.query_tower, self.candidate_tower = appended_towers(
        query_tower, candidate_tower, item_sampling_probability, config)
    self.catalogue_features = catalogue_variables(catalogue_features)
    self.item_sampling_probability = tf.constant(item_sampling_probability,
                                                 tf.float32)
    self.task = tfrs.tasks.Retrieval(temperature=config.temperature,
                                     remove_accidental_hits=True)

  def serving_towers(self) -> tuple[tf.keras.Model, tf.keras.Model]:
    """The query and candidate towers the export serves: the trained ones."""
    return self.query_tower, self.candidate_tower

  def _uniform_negatives(self):
    """Embeddings and ids of items drawn uniformly from the vocabulary."""
    num_items = tf.shape(self.item_sampling_probability, out_type=tf.int64)[0]
    # Index 0 is padding and the last index is the OOV bucket.
    ids = tf.random.uniform([self.config.num_uniform_negatives], minval=1,
                            maxval=num_items - 1, dtype=tf.int64)
    sampled = {name: tf.gather(values, ids)
               for name, values in self.catalogue_features.items()}
    return self.candidate_tower(sampled), ids

  def _full_catalogue_loss(self, inputs: Mapping[str, tf.Tensor],
                           positives: tf.Tensor, training: bool) -> tf.Tensor:
    """Softmax cross-entropy of each positive against every catalogue item.

    The candidates are the batch's positives followed by the catalogue
    (padding excluded). The score mask keeps, of the positives, only each
    row's own; accidental-hit removal drops the row's positive from the
    catalogue part. So each row's softmax runs over every item exactly once.
    """
    positive_ids = inputs[features.ITEM_INDEX]
    catalogue = {name: values[1:]
                 for name, values in self.catalogue_features.items()}
    candidates = tf.concat([positives, self.candidate_tower(catalogue)],
                           axis=0)
    candidate_ids = tf.concat([positive_ids,
                               catalogue[features.ITEM_INDEX]], axis=0)
    batch_size = tf.shape(positive_ids)[0]
    score_mask = tf.concat([
        tf.cast(tf.eye(batch_size), tf.bool),
        tf.ones([batch_size, tf.shape(candidate_ids)[0] - batch_size],
                tf.bool),
    ], axis=1)
    return self.task(self.query_tower(inputs, training=training), candidates,
                     candidate_ids=candidate_ids, score_mask=score_mask,
                     compute_metrics=not training)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    candidate_ids = inputs[features.ITEM_INDEX]
    candidates = self.candidate_tower(inputs)
    if self.config.full_catalogue_softmax:
      return self._full_catalogue_loss(inputs, candidates, training)
    # Under a strategy, the in-batch negatives are the global batch's.
    candidates, candidate_ids = distribution.gather_replicas(candidates,
                                                             candidate_ids)
    batch_size = tf.cast(tf.shape(candidate_ids)[0], tf.float32)
    num_uniform = float(self.config.num_uniform_negatives)
    if self.config.num_uniform_negatives and training:
      negatives, negative_ids = self._uniform_negatives()
      candidates = tf.concat([candidates, negatives], axis=0)
      candidate_ids = tf.concat([candidate_ids, negative_ids], axis=0)
    else:
      num_uniform = 0.0
    sampling_probability = None
    if self.config.use_logq_correction:
      # Padding and the OOV bucket are never drawn uniformly.
      sampling_probability = mixed_sampling_probability(
          tf.gather(self.item_sampling_probability, candidate_ids), batch_size,
          num_uniform, tf.shape(self.item_sampling_probability)[0] - 2)
    # The query tower's dropout (SASRec's sequence encoder) needs the flag:
    # no outer Keras call passes it down from `train_step`.
    return self.task(
        self.query_tower(inputs, training=training),
        candidates,
        candidate_sampling_probability=sampling_probability,
        candidate_ids=candidate_ids,
        compute_metrics=not training)


def build_two_tower(vocab: VocabularySizes, catalogue_features,
                    item_sampling_probability,
                    config: TwoTowerConfig) -> RetrievalModel:
  """The two-tower model: mean-pooled history in the query tower."""
  item_embedding = tf.keras.layers.Embedding(vocab.items, config.embedding_dim,
                                             name="item_id_embedding")
  return RetrievalModel(QueryTower(vocab, item_embedding, config),
                        CandidateTower(vocab, item_embedding, config),
                        catalogue_features, item_sampling_probability, config)
