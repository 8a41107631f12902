"""Trainer families `seminar_psu` (pre-training) and `seminar` (fine-tuning).

SEMINAR (`models/seminar/model.py`) runs as two Trainers: `seminar_psu` trains the
pretraining search unit (`seminar_psu.SeminarPretrainer`) and writes its
encoder and target attention as a checkpoint under its serving-model dir
(`seminar_checkpoint`); `seminar` reads that checkpoint from
`fn_args.base_model`, copies it into the retriever
(`SeminarRetriever.restore_pretrained`), fine-tunes, and exports a ranking
SavedModel (`models.seminar.export`). Both read the
Transform output through `seminar_inputs.SeminarInputs` and seed TF with the
run's seed (`train_inputs.run_seed`).

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

from models.ctr import calibration
from models.ctr import trainer as ctr_trainer
from models.ctr import validation as ctr_validation
from models import early_stopping
from models import families
from models import loss_validation
from models.seminar import checkpoint as seminar_checkpoint
from models.seminar import export as seminar_export
from models.seminar import inputs as seminar_inputs
from models.seminar import model as seminar

# What shapes the PSU's weights or inputs: the fine-tuning Trainer takes
# these from the PSU's export.
INHERITED_HPARAMS = ("embedding_dim", "num_heads", "use_queries", "use_text",
                     "num_keywords", seminar_inputs.IMAGE_VECTORS_PATH)


def _config_and_inputs(fn_args, tft_output, hparams: Mapping[str, object]
                       ) -> tuple[seminar.SeminarConfig,
                                  seminar_inputs.SeminarInputs]:
  """The config (TF seeded with the run seed) and the inputs of a Trainer."""
  config, image_vectors_path = ctr_trainer.config_and_path(
      fn_args, hparams, seminar.SeminarConfig,
      seminar_inputs.IMAGE_VECTORS_PATH)
  return config, seminar_inputs.SeminarInputs(
      fn_args, tft_output, config, image_vectors_path)


def train_seminar_psu(fn_args, tft_output, hparams: Mapping[str, object],
                      spec: families.FamilySpec) -> None:
  """Pre-trains SEMINAR's PSU; writes it for the `seminar` Trainer.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`.
    spec: the family: its name and export (`seminar_checkpoint.save_psu`).
  """
  config, inputs = _config_and_inputs(fn_args, tft_output, hparams)
  pretrainer, _ = inputs.build(config)
  early_stopping.fit(
      pretrainer, inputs.batches(config.batch_size),
      loss_validation.Validator(pretrainer.total_loss,
                                inputs.validation_batches(config.batch_size)),
      config, spec.name, fn_args.model_run_dir, metric=loss_validation.METRIC,
      higher_is_better=False)
  settings = {name: getattr(config, name) for name in INHERITED_HPARAMS
              if name != seminar_inputs.IMAGE_VECTORS_PATH}
  families.load(spec.export)(
      pretrainer,
      {**settings,
       seminar_inputs.IMAGE_VECTORS_PATH: inputs.image_vectors_path},
      fn_args.serving_model_dir)


def train_seminar(fn_args, tft_output, hparams: Mapping[str, object],
                  spec: families.FamilySpec) -> None:
  """Fine-tunes SEMINAR from the PSU (if pre-trained) and exports a ranker.

  Args:
    fn_args: the Trainer's FnArgs; `fn_args.base_model` is the
      `seminar_psu` export when the pipeline ran the pre-training Trainer,
      else the retriever trains from scratch.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`; with a
      PSU, the `INHERITED_HPARAMS` default to the PSU's.
    spec: the family: its name and export (`RankingServingModule`).

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
          seminar_export.SeminarScorer(retriever, inputs.keywords_of_items).scores),
      config, spec.name, fn_args.model_run_dir, metric=ctr_validation.METRIC)
  mode = seminar.ScoringMode(config.attention_scoring)
  if mode.quantized:
    retriever.quantize_item_keys(seed=inputs.seed)
  scorer = seminar_export.SeminarScorer(retriever, inputs.keywords_of_items, mode)
  scorer.calibration = calibration.calibrate(scorer.scores,
                                             inputs.calibration_sample)
  logging.info("Platt calibration (a, b) = %s", scorer.calibration)
  families.load(spec.export)(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      scorer).save(fn_args.serving_model_dir)
