"""SASRec's Trainer: each user's sequence once, a loss at every position.

The per-interaction examples repeat each user's sequence once per prefix;
encoding every prefix again made SASRec's Trainer the pipeline's slowest.
Here the train split is regrouped into one row per user and window of
`features.HISTORY_LENGTH` items (`models.sequence_inputs.windows`): the
causal encoder reads the window once and the query at every position
(`sasrec.SequenceQueryTower.every_position`, the served tower's own layers)
is trained to predict the next item, by the exact softmax over the whole
catalogue (padding excluded; `[positions per batch, items]` logits) or, with
`sampled_negatives`, a sampled one. A batch holds windows of similar length,
as many as fit in `positions_per_batch` positions. The training flags of the per-interaction loss (`num_uniform_negatives`,
`use_logq_correction`, `full_catalogue_softmax`) have no use here, and
`item_bias` is refused.

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
from models import early_stopping
from models import families
from models import retrieval_trainer
from models import sasrec
from models import sequence_inputs
from models import train_inputs
from models import training

FAMILY = "sasrec"
# The per-position features, `[windows, HISTORY_LENGTH]` each.
SEQUENCE_FEATURES = (features.HISTORY_ITEM_INDICES, features.ITEM_INDEX,
                     *sequence_inputs.CONTEXT_FEATURES)


class SequenceRetrievalModel(tfrs.Model):
  """Next-item softmax at every position of a window.

  Over the whole catalogue, or sampled: each position's target against
  `sampled_negatives` items drawn uniformly (with replacement) from the
  catalogue once per batch and shared by every position. A sampled logit
  stands for `catalogue / sampled_negatives` items, so `log` of that is
  added to it (the sampled softmax's correction for a uniform proposal;
  Jean et al., ACL 2015), and a draw equal to the position's target is
  masked out.

  Args:
    query_tower: the served sequence query tower.
    candidate_tower: the served candidate tower.
    catalogue_features: transformed candidate features of every item index.
    temperature: the softmax temperature over cosine similarities.
    sampled_negatives: 0 for the exact softmax over the catalogue, else the
      number of uniform draws per batch.
  """

  def __init__(self, query_tower: sasrec.SequenceQueryTower,
               candidate_tower: tf.keras.Model,
               catalogue_features: Mapping[str, np.ndarray],
               temperature: float, sampled_negatives: int = 0):
    super().__init__()
    self.query_tower = query_tower
    self.candidate_tower = candidate_tower
    # Index 0 is padding, never a target: logit j is item j + 1.
    self.catalogue_features = {name: tf.constant(values[1:]) for name, values
                               in catalogue_features.items()}
    self.temperature = temperature
    self.sampled_negatives = sampled_negatives

  def _items(self, rows: tf.Tensor | None = None) -> tf.Tensor:
    """Candidate vectors of catalogue rows (item index - 1); all if None."""
    # A plain dict: Keras keeps the structure of a layer's first inputs, and
    # this attribute's tracked dict wrapper would then break the export.
    if rows is None:
      return self.candidate_tower(dict(self.catalogue_features))
    return self.candidate_tower({name: tf.gather(values, rows) for name, values
                                 in self.catalogue_features.items()})

  def _sampled_loss(self, queries: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """Cross-entropy of each target row against the shared uniform draws."""
    catalogue_size = tf.shape(self.catalogue_features[features.ITEM_INDEX],
                              out_type=tf.int64)[0]
    draws = tf.random.uniform([self.sampled_negatives], 0, catalogue_size,
                              tf.int64)
    positive = tf.reduce_sum(queries * self._items(rows), axis=-1,
                             keepdims=True) / self.temperature
    correction = tf.math.log(tf.cast(catalogue_size, tf.float32) /
                             self.sampled_negatives)
    sampled = (tf.matmul(queries, self._items(draws), transpose_b=True) /
               self.temperature + correction)
    sampled = tf.where(tf.equal(rows[:, tf.newaxis], draws[tf.newaxis, :]),
                       tf.float32.min, sampled)
    logits = tf.concat([positive, sampled], axis=1)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.zeros_like(rows), logits=logits))

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    """Mean cross-entropy of the next item over every real position."""
    real = tf.not_equal(inputs[features.HISTORY_ITEM_INDICES],
                        features.PADDING_INDEX)
    queries = tf.boolean_mask(
        self.query_tower.every_position(inputs, training=training), real)
    rows = tf.boolean_mask(inputs[features.ITEM_INDEX], real) - 1
    if self.sampled_negatives:
      return self._sampled_loss(queries, rows)
    logits = tf.matmul(queries, self._items(), transpose_b=True) / \
        self.temperature
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=rows, logits=logits))


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
  early_stopping.fit(
      SequenceRetrievalModel(model.query_tower, model.candidate_tower,
                             catalogue.candidate_features, config.temperature,
                             config.sampled_negatives),
      batches, validator, config, FAMILY, fn_args.model_run_dir)
  retrieval_trainer.export(fn_args, tft_output, spec, model, catalogue)
