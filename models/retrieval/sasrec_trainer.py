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
candidate tower over every item at every step) while the catalogue has at
most `EXACT_SOFTMAX_MAX_ITEMS` items, and over a sampled pool above
(`sampled_softmax` forces either): the batch's targets plus
`num_uniform_negatives` uniform draws, with the mixed-proposal logQ
correction (`use_logq_correction`) as the two-tower's training has, so that
a step's cost does not grow with the catalogue. A batch holds windows of
similar length, as many as fit in `positions_per_batch` positions.
`full_catalogue_softmax` has no use here, and `item_bias` is refused.

Validation, early stopping and the export are the shared retrieval
Trainer's (`models.retrieval.trainer`): each user's newest train example is
held out of the sequences, and the exported towers are
`sasrec.build_sasrec`'s, unchanged.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np

from data import features
from models import families
from models.retrieval import sasrec
from models.retrieval import trainer as retrieval_trainer
from models import sequence_inputs
from models import train_inputs
from models import training

# The per-position features, `[windows, HISTORY_LENGTH]` each.
SEQUENCE_FEATURES = (features.HISTORY_ITEM_INDICES, features.ITEM_INDEX,
                     *sequence_inputs.CONTEXT_FEATURES)


# The largest catalogue trained with the exact softmax by default; above it
# the sampled one. The rule, by cost and by quality on each side of it:
# - Cost: at the default 1,600 positions per step
#   (benchmarks/results/softmax_cost_positions_1600.json, a quiet machine)
#   the exact step costs 1.4x the sampled one at 5k items, 2.7x at 10k and
#   5.1x at 20k, while the sampled one stays at 0.08 s.
# - Quality below 10k, three seeds (convergence_<dataset>.json): level on
#   MovieLens-100K (1.7k items); on Grocery (8.7k) the sampled one is 1.6-3.9%
#   lower, about one seed std, so both shared datasets keep the exact one.
# - Quality above 10k, three seeds on H&M (17k items,
#   softmax_switch_hm-fashion.json): exact, this sampled one and one with
#   4,096 uniform draws are within one seed std on Recall@10, Recall@50 and
#   NDCG@10, and the sampled Trainer takes 0.29x the exact one's time.
# benchmarks/README.md, "Exact or sampled softmax above 10k items", has the
# tables.
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
      sasrec.SequenceRetrievalModel(model.query_tower, model.candidate_tower,
                             model.catalogue_features,
                             catalogue.sampling_probability, config, sampled),
      batches, validator, config, spec.name, fn_args.model_run_dir, num_items)
  retrieval_trainer.export(fn_args, tft_output, spec, model.query_tower,
                           model.candidate_tower, catalogue)
