"""The Trainer shared by every retrieval family (`families.RETRIEVAL`)."""

from __future__ import annotations

import logging
from typing import Mapping

import tensorflow as tf

from data import features
from models import families
from models import retrieval_export
from models import train_inputs
from models import two_tower
from transforms import preprocessing


def train_retrieval(fn_args, tft_output, hparams: Mapping[str, object],
                    spec: families.FamilySpec) -> None:
  """Trains a retrieval family's model and exports its serving signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's hyperparameter defaults.
    spec: the family: its config class, `build_model` and export module.
  """
  config = train_inputs.seeded_config(fn_args, hparams, spec.config_class())
  vocab = two_tower.VocabularySizes(
      users=preprocessing.vocabulary_size(tft_output, features.USER_VOCAB),
      items=preprocessing.vocabulary_size(tft_output, features.ITEM_VOCAB),
      title_tokens=preprocessing.vocabulary_size(tft_output,
                                                 features.TITLE_TOKEN_VOCAB),
      categories=preprocessing.vocabulary_size(tft_output,
                                               features.CATEGORY_VOCAB),
  )
  catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output)
  logging.info("Catalogue: %d items, %d train positives", len(catalogue.item_ids),
               int(catalogue.train_counts.sum()))

  build_model = families.load(spec.build_model)
  model = build_model(vocab, catalogue.candidate_features,
                      catalogue.sampling_probability, config)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  train = train_inputs.input_dataset(fn_args, fn_args.train_files, tft_output,
                                     config.batch_size, shuffle=True)
  model.fit(train, epochs=config.epochs, verbose=2)

  export_module = families.load(spec.export)
  export_module(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      model.query_tower, model.candidate_tower, catalogue,
  ).save(fn_args.serving_model_dir)
