"""Trainer families `seminar_psu` (pre-training) and `seminar` (fine-tuning).

SEMINAR (`models/seminar.py`) runs as two Trainers: `seminar_psu` trains the
pretraining search unit (`seminar_psu.SeminarPretrainer`) and writes its
encoder and target attention as a checkpoint under its serving-model dir
(`seminar_checkpoint`); `seminar` reads that checkpoint from
`fn_args.base_model`, copies it into the retriever
(`SeminarRetriever.restore_pretrained`), fine-tunes, and exports a ranking
SavedModel (`ctr_trainer.RankingServingModule`: raw features in,
`probability` out, from `serving_default` and `evaluate`). Both read the
Transform output through `seminar_inputs.SeminarInputs` and seed TF with the
run's seed (`train_inputs.run_seed`).

The export reads history queries the same way as training: from the
`history_queries` of a request (`serving_names.RANKER_HISTORY_QUERIES`) or of
an eval example; a history item whose query is "" or missing, and every item
of a `serving_default` request, gets its derived query.

`attention_scoring` picks the export's top-K selection: "exact", or "pq":
the item keys are product-quantised once, at export
(`SeminarRetriever.quantize_item_keys`), and the codes are constants of the
SavedModel; "pq_xla" compiles the lookup-table scoring with XLA, which the
serving runtime must support (TF Serving on CPU:
`--xla_cpu_compilation_enabled=true`). Queries do not change the codes: the
top-K selection runs on item keys only, and a history's queries enter the
exact attention over the selected items and the most recent pair, in every
mode. The score is calibrated to a click probability by Platt scaling
(`calibration`) fitted on a sample of the labelled train examples (positives
and ExampleGen's sampled negatives), so that the Evaluator's log-loss bound
applies as it does to the `ranking` family.

Both Trainers stop early on validation rows carved from train
(`SeminarInputs.held_out`: each user's newest train positive and its
negatives, never trained on) and export the best epoch
(`models.early_stopping`, `learning_curve.json` in the ModelRun directory):
the PSU on its own loss over the held-out positives' windows, the retriever
on the AUC of its (exact-attention) scores over the held-out rows.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import calibration
from models import ctr_trainer
from models import ctr_validation
from models import early_stopping
from models import loss_validation
from models import seminar
from models import seminar_checkpoint
from models import seminar_inputs

# What shapes the PSU's weights or inputs: the fine-tuning Trainer takes
# these from the PSU's export.
INHERITED_HPARAMS = ("embedding_dim", "num_heads", "use_queries", "use_text",
                     "num_keywords", seminar_inputs.IMAGE_VECTORS_PATH)
# The families this module trains, as their learning curves name them.
PSU = "seminar_psu"
SEMINAR = "seminar"


class SeminarScorer(tf.Module):
  """Transformed features -> the logit that the user picks the example's item.

  Args:
    retriever: the trained retriever; with `ScoringMode.PQ`, after
      `quantize_item_keys()`.
    keywords_of_items: `[num_items, K]` derived queries, for history items
      without one in `HISTORY_QUERY_TOKEN_INDICES`.
    mode: exact or PQ-approximate top-K selection.
    calibration: Platt `(a, b)`: the logit is `a * score + b`.
  """

  def __init__(self, retriever: seminar.SeminarRetriever,
               keywords_of_items: np.ndarray,
               mode: seminar.ScoringMode = seminar.ScoringMode.EXACT,
               calibration: tuple[float, float] = (1.0, 0.0)):
    super().__init__()
    self.retriever = retriever
    self.keywords_of_items = tf.constant(keywords_of_items, tf.int64)
    self.mode = seminar.ScoringMode(mode)
    self.calibration = calibration

  @property
  def variables(self):
    return self.retriever.variables

  def scores(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch]` uncalibrated scores of `ITEM_INDEX` after the history."""
    history = transformed[features.HISTORY_ITEM_INDICES]
    query_tokens = tf.reshape(
        transformed[features.HISTORY_QUERY_TOKEN_INDICES],
        [tf.shape(history)[0], tf.shape(history)[1], features.QUERY_LENGTH])
    keywords = seminar_inputs.keywords_with_queries(
        tf.gather(self.keywords_of_items, history), query_tokens)
    candidates = tf.reshape(transformed[features.ITEM_INDEX], [-1, 1])
    return self.retriever.score_selected(history, keywords, candidates,
                                         self.mode)[:, 0]

  def __call__(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    slope, intercept = self.calibration
    return slope * self.scores(transformed) + intercept


def _config_and_inputs(fn_args, tft_output, hparams: Mapping[str, object]
                       ) -> tuple[seminar.SeminarConfig,
                                  seminar_inputs.SeminarInputs]:
  """The config (TF seeded with the run seed) and the inputs of a Trainer."""
  config, image_vectors_path = ctr_trainer.config_and_path(
      fn_args, hparams, seminar.SeminarConfig,
      seminar_inputs.IMAGE_VECTORS_PATH)
  return config, seminar_inputs.SeminarInputs(
      fn_args, tft_output, config, image_vectors_path)


def train_seminar_psu(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """Pre-trains SEMINAR's PSU; writes it for the `seminar` Trainer.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`.
  """
  config, inputs = _config_and_inputs(fn_args, tft_output, hparams)
  pretrainer, _ = inputs.build(config)
  early_stopping.fit(
      pretrainer, inputs.batches(config.batch_size),
      loss_validation.Validator(pretrainer.total_loss,
                                inputs.validation_batches(config.batch_size)),
      config, PSU, fn_args.model_run_dir, metric=loss_validation.METRIC,
      higher_is_better=False)
  settings = {name: getattr(config, name) for name in INHERITED_HPARAMS
              if name != seminar_inputs.IMAGE_VECTORS_PATH}
  seminar_checkpoint.save_psu(
      pretrainer,
      {**settings,
       seminar_inputs.IMAGE_VECTORS_PATH: inputs.image_vectors_path},
      fn_args.serving_model_dir)


def train_seminar(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """Fine-tunes SEMINAR from the PSU (if pre-trained) and exports a ranker.

  Args:
    fn_args: the Trainer's FnArgs; `fn_args.base_model` is the
      `seminar_psu` export when the pipeline ran the pre-training Trainer,
      else the retriever trains from scratch.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`; with a
      PSU, the `INHERITED_HPARAMS` default to the PSU's.

  Raises:
    ValueError: if the train split has no sampled negatives to calibrate on.
  """
  if fn_args.base_model:
    hparams = seminar_checkpoint.inherit_psu_settings(
        hparams, seminar_checkpoint.read_psu_settings(fn_args.base_model))
  config, inputs = _config_and_inputs(fn_args, tft_output, hparams)
  pretrainer, retriever = inputs.build(config)
  if fn_args.base_model:
    seminar_checkpoint.restore_psu(fn_args.base_model, pretrainer, retriever)
    logging.info("Restored the PSU from %s", fn_args.base_model)
  early_stopping.fit(
      retriever, inputs.batches(config.batch_size),
      ctr_validation.Validator(
          inputs.held_out.rows,
          SeminarScorer(retriever, inputs.keywords_of_items).scores),
      config, SEMINAR, fn_args.model_run_dir, metric=ctr_validation.METRIC)
  mode = seminar.ScoringMode(config.attention_scoring)
  if mode.quantized:
    retriever.quantize_item_keys(seed=inputs.seed)
  scorer = SeminarScorer(retriever, inputs.keywords_of_items, mode)
  scorer.calibration = calibration.calibrate(scorer.scores,
                                             inputs.calibration_sample)
  logging.info("Platt calibration (a, b) = %s", scorer.calibration)
  ctr_trainer.RankingServingModule(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      scorer).save(fn_args.serving_model_dir)
