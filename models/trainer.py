"""The TFX Trainer entry point: `run_fn` dispatches on the model family.

The pipeline passes `custom_config = {"model_family": ..., "hparams": {...}}`.
Each family registers one function taking `(fn_args, tft_output, hparams)`
that trains and writes a SavedModel to `fn_args.serving_model_dir`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
from typing import Callable, Mapping

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from data import features
from models import ctr_trainer
from models import gmn
from models import guim
from models import retrieval_export
from models import sasrec
from models import seminar_trainer
from models import two_tower
from transforms import preprocessing

MODEL_FAMILY_KEY = "model_family"
HPARAMS_KEY = "hparams"
# Optional: names the model in reports that compare several Trainers' models.
LABEL_KEY = "label"
MODEL_INFO_FILE = "model_info.json"


def input_dataset(fn_args, file_pattern, tft_output, batch_size: int,
                  shuffle: bool) -> tf.data.Dataset:
  """One pass over transformed examples, as dicts of tensors."""
  return fn_args.data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=batch_size, num_epochs=1,
                                     shuffle=shuffle, shuffle_seed=0),
      tft_output.transformed_metadata.schema)


def train_retrieval(fn_args, tft_output, hparams: Mapping[str, object],
                    config_class, build_model: Callable) -> None:
  """Trains a retrieval model and exports its serving signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of `config_class`'s defaults.
    config_class: the family's hyperparameter dataclass.
    build_model: `(vocab, catalogue_features, item_sampling_probability,
      config) -> two_tower.RetrievalModel`.
  """
  config = config_class.from_dict(hparams)
  logging.info("Hyperparameters: %s", config)
  tf.keras.utils.set_random_seed(0)
  vocab = two_tower.VocabularySizes(
      users=preprocessing.vocabulary_size(tft_output, features.USER_VOCAB),
      items=preprocessing.vocabulary_size(tft_output, features.ITEM_VOCAB),
      title_tokens=preprocessing.vocabulary_size(tft_output,
                                                 features.TITLE_TOKEN_VOCAB),
      categories=preprocessing.vocabulary_size(tft_output,
                                               features.CATEGORY_VOCAB),
  )
  catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output,
                                                     input_dataset)
  logging.info("Catalogue: %d items, %d train positives", len(catalogue.item_ids),
               int(catalogue.train_counts.sum()))

  model = build_model(vocab, catalogue.candidate_features,
                      catalogue.sampling_probability, config)
  model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  train = input_dataset(fn_args, fn_args.train_files, tft_output,
                        config.batch_size, shuffle=True)
  model.fit(train, epochs=config.epochs, verbose=2)

  retrieval_export.RetrievalServingModule(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      model.query_tower, model.candidate_tower, catalogue,
  ).save(fn_args.serving_model_dir)


MODEL_FAMILIES: dict[str, Callable] = {
    "two_tower": functools.partial(train_retrieval,
                                   config_class=two_tower.TwoTowerConfig,
                                   build_model=two_tower.build_two_tower),
    "sasrec": functools.partial(train_retrieval,
                                config_class=sasrec.SasRecConfig,
                                build_model=sasrec.build_sasrec),
    "guim": functools.partial(train_retrieval,
                              config_class=guim.GuimConfig,
                              build_model=guim.build_guim),
    "gmn": functools.partial(train_retrieval, config_class=gmn.GmnConfig,
                             build_model=gmn.build_gmn),
    "courier": functools.partial(ctr_trainer.train_courier,
                                 input_dataset=input_dataset),
    "ranking": functools.partial(ctr_trainer.train_ranking,
                                 input_dataset=input_dataset),
    "seminar_psu": functools.partial(seminar_trainer.train_seminar_psu,
                                     input_dataset=input_dataset),
    "seminar": functools.partial(seminar_trainer.train_seminar,
                                 input_dataset=input_dataset),
}


# Families trained in two steps: the pipeline first runs a Trainer with the
# family named here (pre-training) and hands its model to the family's own
# Trainer as `fn_args.base_model` (fine-tuning, or frozen features).
PRETRAINED_BY: dict[str, str] = {"ranking": "courier", "seminar": "seminar_psu"}

# Families that score (user, item) pairs as CTR rankers: evaluated with AUC
# and log loss instead of full-ranking recall, and pushed without an index.
RANKING_FAMILIES: frozenset[str] = frozenset({"ranking", "seminar"})


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """Trains the model family named in `fn_args.custom_config`."""
  custom_config = fn_args.custom_config or {}
  family = custom_config.get(MODEL_FAMILY_KEY, "two_tower")
  if family not in MODEL_FAMILIES:
    raise ValueError(f"unknown model family {family!r}; "
                     f"registered: {sorted(MODEL_FAMILIES)}")
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  hparams = custom_config.get(HPARAMS_KEY, {})
  MODEL_FAMILIES[family](fn_args, tft_output, hparams)
  # Beside Format-Serving/, in the Model artifact, so that it is not pushed.
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  with tf.io.gfile.GFile(os.path.join(model_uri, MODEL_INFO_FILE), "w") as out:
    json.dump({MODEL_FAMILY_KEY: family, HPARAMS_KEY: hparams,
               LABEL_KEY: custom_config.get(LABEL_KEY, family)}, out)


def read_model_info(model_uri: str) -> dict:
  """What `run_fn` recorded about a Model artifact; {} for other models."""
  path = os.path.join(model_uri, MODEL_INFO_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as info:
    return json.load(info)


def family_hparams(family: str, hparams: Mapping[str, object]) -> dict:
  """The entries of `hparams` that `family`'s hyperparameter class declares.

  Raises:
    ValueError: if `family` is not a registered retrieval family.
  """
  config_class = getattr(MODEL_FAMILIES.get(family), "keywords", {}).get(
      "config_class")
  if config_class is None:
    raise ValueError(f"{family!r} is not a registered retrieval family; "
                     f"registered: {sorted(MODEL_FAMILIES)}")
  names = {field.name for field in dataclasses.fields(config_class)}
  return {name: value for name, value in hparams.items() if name in names}
