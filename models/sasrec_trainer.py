"""SASRec's Trainer: each user's sequence once, a loss at every position.

The per-interaction examples repeat each user's sequence once per prefix;
encoding every prefix again made SASRec's Trainer the pipeline's slowest.
Here the train split is regrouped into one row per user and window of
`features.HISTORY_LENGTH` items (`models.sequence_inputs.windows`): the
causal encoder reads the window once and the query at every position
(`sasrec.SequenceQueryTower.every_position`, the served tower's own layers)
is trained to predict the next item. Its softmax runs over the whole
catalogue (padding excluded; `[positions per batch, items]` logits, the
candidate tower over every item at every step) while the catalogue has at
most `EXACT_SOFTMAX_MAX_ITEMS` items, and over a sampled pool above
(`sampled_softmax` forces either): the batch's targets plus
`num_uniform_negatives` uniform draws, with the mixed-proposal logQ
correction (`use_logq_correction`) as the two-tower's training has, so that
a step's cost does not grow with the catalogue. A batch holds windows of
similar length, as many as fit in `positions_per_batch` positions.
`full_catalogue_softmax` has no use here, and `item_bias` is refused.

Validation, early stopping and the export are the shared retrieval
Trainer's (`models.retrieval_trainer`): each user's newest train example is
held out of the sequences, and the exported towers are
`sasrec.build_sasrec`'s, unchanged.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import families
from models import retrieval_trainer
from models import sasrec
from models import sequence_inputs
from models import train_inputs
from models import training
from models import two_tower

FAMILY = "sasrec"
# The per-position features, `[windows, HISTORY_LENGTH]` each.
SEQUENCE_FEATURES = (features.HISTORY_ITEM_INDICES, features.ITEM_INDEX,
                     *sequence_inputs.CONTEXT_FEATURES)


# The largest catalogue trained with the exact softmax by default; above it
# the sampled one. In benchmarks/results/softmax_cost.json (default config,
# 3,200 positions per step, 2 shared CPUs) the exact step costs 0.67x the
# sampled one at 5k items, 4.2x at 30k and 8.9x at 100k, while the sampled
# one stays at 2.2-2.5 s: they cross near 7.5k items (interpolated). 10k
# keeps both shared real datasets (1.7k and 8.7k items) on the exact
# softmax, at most about 1.4x the sampled step's cost there.
EXACT_SOFTMAX_MAX_ITEMS = 10_000


def uses_sampled_softmax(config: sasrec.SasRecConfig, num_items: int,
                         exact_max_items: int = EXACT_SOFTMAX_MAX_ITEMS
                         ) -> bool:
  """Whether `config` trains a catalogue of `num_items` by sampled softmax.

  Args:
    config: the hyperparameters; `sampled_softmax` None leaves the choice
      to the catalogue's size.
    num_items: the exact softmax's logits per position (padding excluded).
    exact_max_items: the largest catalogue given the exact softmax.
  """
  if config.sampled_softmax is None:
    return num_items > exact_max_items
  return config.sampled_softmax


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
    catalogue_features: transformed candidate features of every item index.
    item_sampling_probability: `[item indices]` train frequency of each
      item (`ItemCatalogue.sampling_probability`).
    config: the hyperparameters: `temperature`, and for the sampled softmax
      `num_uniform_negatives` and `use_logq_correction`.
    sampled: the sampled softmax, else the exact one.
  """

  def __init__(self, query_tower: sasrec.SequenceQueryTower,
               candidate_tower: tf.keras.Model,
               catalogue_features: Mapping[str, np.ndarray],
               item_sampling_probability: np.ndarray,
               config: sasrec.SasRecConfig, sampled: bool):
    super().__init__()
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    self.catalogue_features = {name: tf.constant(values) for name, values
                               in catalogue_features.items()}
    self.item_sampling_probability = tf.constant(item_sampling_probability,
                                                 tf.float32)
    self.config = config
    self.sampled = sampled
    # The mean over positions, as the exact softmax's loss.
    self.task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True),
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
    """Mean cross-entropy of each target against the pool of targets+draws.

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
    return self.task(queries, self._items(pool),
                     candidate_sampling_probability=probability,
                     candidate_ids=pool, compute_metrics=False)

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    """Mean cross-entropy of the next item over every real position."""
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
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=targets - 1, logits=logits))


def train_sasrec(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """Trains SASRec on per-user windows and exports the retrieval signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of `sasrec.SasRecConfig`'s defaults.

  Raises:
    ValueError: if `hparams` ask for `item_bias`.
  """
  spec = families.get(FAMILY)
  config = train_inputs.seeded_config(fn_args, hparams, spec.config_class())
  if config.item_bias:
    raise ValueError("item_bias is not trained per sequence; it exists for "
                     "the per-interaction training of benchmarks.sequential")
  model, catalogue = retrieval_trainer.build_model(
      fn_args, tft_output, sasrec.build_sasrec, config)
  rows, held_out, validator = retrieval_trainer.validation_split(
      fn_args, tft_output, model, catalogue)
  windows = sequence_inputs.windows(rows, ~held_out, features.HISTORY_LENGTH,
                                    config.every_window)
  logging.info("SASRec: %d windows, %d target positions",
               len(windows[features.ITEM_INDEX]),
               int(np.sum(windows[features.ITEM_INDEX] != 0)))
  batches = training.length_bucketed_batches(
      windows, SEQUENCE_FEATURES, config.positions_per_batch,
      train_inputs.run_seed(fn_args),
      positions_per_batch=config.positions_per_batch)
  num_items = len(catalogue.item_ids) - 1  # Padding excluded.
  sampled = uses_sampled_softmax(config, num_items)
  logging.info("SASRec: %s softmax over %d items",
               "sampled" if sampled else "exact", num_items)
  retrieval_trainer.fit(
      SequenceRetrievalModel(model.query_tower, model.candidate_tower,
                             catalogue.candidate_features,
                             catalogue.sampling_probability, config, sampled),
      batches, validator, config, FAMILY, fn_args.model_run_dir, num_items)
  retrieval_trainer.export(fn_args, tft_output, spec, model, catalogue)
