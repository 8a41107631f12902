"""SASRec's Trainer: each user's sequence once, a loss at every position.

The train split stores each user's sequence once (one example per user);
SASRec reads it as stored, without expanding it into per-interaction rows
(`train_inputs.sequence_rows`), and cuts it into one row per user and
window of `features.HISTORY_LENGTH` items (`models.sequence_inputs.windows`):
encoding every prefix again, as per-interaction rows would have it, made
SASRec's Trainer the pipeline's slowest. The causal encoder reads the
window once and the query at every position
(`sasrec.SequenceQueryTower.every_position`, the served tower's own
layers) is trained to predict the next item. Its softmax runs over the whole
catalogue (padding excluded; `[positions per batch, items]` logits, the
candidate tower over every item at every step) wherever that is affordable
(`uses_sampled_softmax`: `EXACT_SOFTMAX_MAX_ITEMS` and
`EXACT_SOFTMAX_MAX_EPOCH_LOGITS`), and over a sampled pool elsewhere
(`sampled_softmax` forces either): the batch's targets plus
`num_uniform_negatives` uniform draws, with the mixed-proposal logQ
correction (`use_logq_correction`) as the two-tower's training has, so that
a step's cost does not grow with the catalogue. A batch holds windows of
similar length, as many as fit in `positions_per_batch` positions.
`full_catalogue_softmax` has no use here, and `item_bias` is refused.

Validation, early stopping and the export are the shared retrieval
Trainer's (`models.retrieval.trainer`): each user's newest train example is
held out of the sequences, and the exported towers are
`sasrec.build_sasrec`'s, unchanged. So is the `tf.distribute` strategy: under
one, each input pipeline cuts its own share of the windows
(`sharded_window_batches`) into batches of `positions_per_batch / replicas`
positions, and an epoch is as many steps as one process's epoch has batches.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import distribution
from models import families
from models.retrieval import sasrec
from models.retrieval import trainer as retrieval_trainer
from models import sequence_inputs
from models import train_inputs
from models import training

# The per-position features, `[windows, HISTORY_LENGTH]` each.
SEQUENCE_FEATURES = (features.HISTORY_ITEM_INDICES, features.ITEM_INDEX,
                     *sequence_inputs.CONTEXT_FEATURES)


# The bounds of `uses_sampled_softmax`'s rule; its docstring has the evidence.
EXACT_SOFTMAX_MAX_ITEMS = 100_000
EXACT_SOFTMAX_MAX_EPOCH_LOGITS = 5_000_000_000


def uses_sampled_softmax(config: sasrec.SasRecConfig, num_items: int,
                         num_positions: int,
                         max_items: int = EXACT_SOFTMAX_MAX_ITEMS,
                         max_epoch_logits: int = EXACT_SOFTMAX_MAX_EPOCH_LOGITS
                         ) -> bool:
  """Whether `config` trains by sampled softmax.

  The exact softmax trains by default wherever it is affordable, the sampled
  one elsewhere. Affordable: a step's logits (`positions_per_batch` x items)
  fit in memory, at most `EXACT_SOFTMAX_MAX_ITEMS` items (1,600 x 100k
  floats, 640 MB), and an epoch's logits (train target positions x items) at
  most `EXACT_SOFTMAX_MAX_EPOCH_LOGITS`, about Taobao's 82k positions x 55k
  items, whose exact epoch took some 3 minutes on 2 shared cores. Measured
  (three seeds each unless said; benchmarks/README.md, "Exact or sampled
  softmax above 10k items", has the tables):
  - Quality where the choice matters most: on Taobao (55k items, 4.5e9
    logits an epoch) the exact softmax gets 3.9x the sampled one's Recall@10
    (0.1440 +- 0.0037 against 0.0372 +- 0.0110,
    softmax_switch_taobao-userbehavior-sample_*.json), at 17x its Trainer
    time (1,952 s against 114 s, different loads).
  - Elsewhere the two are close: level on H&M (17k items, within one seed
    std; exact 3.4x the time, softmax_switch_hm-fashion.json); exact 1.6-3.9%
    above on Grocery (8.7k, convergence_amazon-grocery.json); sampled 11%
    above on MovieLens-100K (1.7k, softmax_switch_movielens-100k.json).
  - Cost: at 1,600 positions a step the exact one costs 2.7x the sampled one
    at 10k items, 5.1x at 20k (softmax_cost_positions_1600.json) and 13x at
    55k (softmax_cost_real_catalogues.json), so a big log or catalogue gets
    the sampled one, whose step does not grow with the catalogue.
  `sampled_softmax` forces either.

  Args:
    config: the hyperparameters; `sampled_softmax` None leaves the choice
      to the rule.
    num_items: the exact softmax's logits per position (padding excluded).
    num_positions: the target positions of an epoch.
    max_items: the largest catalogue given the exact softmax.
    max_epoch_logits: the most logits an exact epoch may compute.
  """
  if config.sampled_softmax is None:
    return (num_items > max_items or
            num_items * num_positions > max_epoch_logits)
  return config.sampled_softmax


def sharded_window_batches(windows: dict[str, np.ndarray],
                           positions_per_batch: int, seed: int,
                           context: tf.distribute.InputContext
                           ) -> tf.data.Dataset:
  """One input pipeline's share of the windows in length-bucketed batches.

  Pipeline `i` of `n` takes windows `i, i + n, ...`; a replica's batch holds
  at most `positions_per_batch / replicas` positions (and rows), so that a
  step over all replicas trains about as many positions as one process's.

  Args:
    windows: the train windows by feature (`SEQUENCE_FEATURES` and others).
    positions_per_batch: the global budget of positions per step.
    seed: the run's seed; each pipeline groups with its own
      (`distribution.pipeline_seed`), anew every pass.
    context: which pipeline this is, of how many, and the replicas.

  Returns:
    The batches, repeated without end.
  """
  budget = context.get_per_replica_batch_size(positions_per_batch)
  share = {name: values[context.input_pipeline_id::
                        context.num_input_pipelines]
           for name, values in windows.items()}
  return training.length_bucketed_batches(
      share, SEQUENCE_FEATURES, budget,
      distribution.pipeline_seed(seed, context),
      positions_per_batch=budget).repeat()


def train_sasrec(fn_args, tft_output, hparams: Mapping[str, object],
                 spec: families.FamilySpec) -> None:
  """Trains SASRec on per-user windows and exports the retrieval signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of `sasrec.SasRecConfig`'s defaults.
    spec: the family: its name, config class and export.

  Raises:
    ValueError: if `hparams` ask for `item_bias`.
  """
  # First: a multi-worker strategy must exist before any TensorFlow op.
  strategy = distribution.create(
      distribution.strategy_name(fn_args.custom_config))
  config = train_inputs.seeded_config(fn_args, hparams, spec.config_class())
  if config.item_bias:
    raise ValueError("item_bias is not trained per sequence; it exists for "
                     "the per-interaction training of benchmarks.sequential")
  with distribution.scope(strategy):
    model, catalogue = retrieval_trainer.build_model(
        fn_args, tft_output, sasrec.build_sasrec, config)
  rows, held_out, validator = retrieval_trainer.validation_split(
      fn_args, tft_output, model, catalogue)
  windows = sequence_inputs.windows(rows, ~held_out, features.HISTORY_LENGTH,
                                    config.every_window)
  num_positions = int(np.sum(windows[features.ITEM_INDEX] != 0))
  logging.info("SASRec: %d windows, %d target positions",
               len(windows[features.ITEM_INDEX]), num_positions)
  seed = train_inputs.run_seed(fn_args)
  if strategy is None:
    batches = training.length_bucketed_batches(
        windows, SEQUENCE_FEATURES, config.positions_per_batch, seed,
        positions_per_batch=config.positions_per_batch)
  else:
    batches = retrieval_trainer.sharded_batches(
        fn_args, strategy,
        lambda context: sharded_window_batches(
            windows, config.positions_per_batch, seed, context),
        training.length_bucketed_batch_count(
            windows[SEQUENCE_FEATURES[0]], config.positions_per_batch,
            config.positions_per_batch))
  num_items = len(catalogue.item_ids) - 1  # Padding excluded.
  sampled = uses_sampled_softmax(config, num_items, num_positions)
  logging.info("SASRec: %s softmax over %d items",
               "sampled" if sampled else "exact", num_items)
  with distribution.scope(strategy):
    trained = sasrec.SequenceRetrievalModel(
        model.query_tower, model.candidate_tower, model.catalogue_features,
        catalogue.sampling_probability, config, sampled)
  retrieval_trainer.fit(trained, batches, validator, config, spec.name,
                        distribution.model_run_write_dir(fn_args), num_items)
  retrieval_trainer.export(fn_args, tft_output, spec, model.query_tower,
                           model.candidate_tower, catalogue)
