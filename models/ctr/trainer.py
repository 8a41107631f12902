"""Trainer families `courier` (pre-training) and `ranking` (CTR).

`courier` trains COURIER on the positive train examples and exports the item
embedding table (`models.ctr.export`). `ranking` reads that table from
`fn_args.base_model` when the pipeline pre-trained one, aligns it to its own
item vocabulary by raw id (`ranking.align_embedding_table`) and trains the
DIN + DCN-v2 model on the labelled examples; ExampleGen must have written
sampled negatives (label 0). Its export takes raw features, with the
Transform graph inside (`models.ctr.export.RankingServingModule`).

In the pipeline, an item's content vector is built from what the Transform
output holds for it (title tokens and categories), optionally concatenated
with an external `item_id -> vector` file (`external_vectors_path`). With
`images_path` (a folder or zip of `<item_id>.jpg|.png`, local or a URI),
`courier` first decodes every catalogue item's image with a Beam step
(`transforms.item_images`) into its ModelRun directory, with the summary of
what was decoded and skipped (`item_images.json`, in the run summary), then
trains an image encoder inside COURIER's pre-training: a small CNN, or the
user's Keras backbone from `image_backbone_path`. With `image_objective`
`simclr` or `supervised` the encoder is instead trained first on the images
alone (`models.ctr.image_pretraining`), and COURIER pre-trains without an
image branch. Either way the export carries every item's image embedding,
which `ranking` reads as a frozen feature.

Both Trainers hold out each user's newest train positive, and the ranker its
negatives too (`models.ctr.validation`), never train on them, and stop early
on them (`models.early_stopping`): COURIER on its own loss, the ranker on
AUC. The best epoch is exported and the learning curve written to
`learning_curve.json` in the ModelRun directory.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from data import features
from data import item_vectors
from models import catalogue as catalogue_lib
from models.ctr import content_features
from models.ctr import courier
from models.ctr import export as ctr_export
from models.ctr import image_pretraining
from models.ctr import ranking
from models.ctr import validation as ctr_validation
from models import early_stopping
from models import families
from models import loss_validation
from models import train_inputs
from transforms import item_images
from transforms import preprocessing

# Hyperparameters of the pipeline families beyond the model configs.
EXTERNAL_VECTORS_PATH = "external_vectors_path"
IMAGES_PATH = "images_path"
IMAGE_BACKBONE_PATH = "image_backbone_path"
# Where `courier` writes the decoded images, in its ModelRun directory.
DECODED_IMAGES_DIR = "item_images"


def catalogue_tokens(catalogue: catalogue_lib.ItemCatalogue,
                     num_title_tokens: int) -> np.ndarray:
  """Title tokens and categories of every item index in one token space.

  Args:
    catalogue: the transformed candidate features of every item index.
    num_title_tokens: title token indices, padding and OOV included; category
      index c > 0 becomes `c + num_title_tokens - 1`.

  Returns:
    `[num_items, TITLE_LENGTH + CATEGORY_LENGTH]` int64, 0 = padding.
  """
  titles = catalogue.candidate_features[features.TITLE_TOKEN_INDICES]
  categories = catalogue.candidate_features[features.CATEGORY_INDICES]
  shifted_categories = np.where(categories > 0, categories + num_title_tokens - 1, 0)
  return np.concatenate([titles, shifted_categories], axis=1).astype(np.int64)


def catalogue_content(catalogue: catalogue_lib.ItemCatalogue,
                      num_title_tokens: int, seed: int,
                      external_vectors_path: str = "") -> np.ndarray:
  """Content vectors of every item index from its title tokens and categories.

  Args:
    catalogue: the transformed candidate features of every item index.
    num_title_tokens: title token indices, padding and OOV included.
    seed: seeds the truncated SVD of a large token vocabulary.
    external_vectors_path: optional `item_id -> vector` file.

  Returns:
    `[num_items, width]` float32.
  """
  tokens = catalogue_tokens(catalogue, num_title_tokens)
  num_tokens = num_title_tokens + int(
      catalogue.candidate_features[features.CATEGORY_INDICES].max(initial=0))
  external = None
  if external_vectors_path:
    external, found = item_vectors.load_item_vectors(
        external_vectors_path, list(catalogue.item_ids))
    logging.info("External vectors found for %d of %d items", int(found.sum()),
                 len(found) - 2)
  return content_features.content_vectors(tokens, num_tokens, external=external,
                                          seed=seed)


def catalogue_images(images_uri: str, item_ids: np.ndarray,
                     model_run_dir: str,
                     config: courier.CourierConfig) -> courier.ItemImages:
  """Decodes every catalogue item's image into `model_run_dir`.

  Writes the decoding summary there (`item_images.SUMMARY_FILE`).

  Raises:
    data.item_images.BadImageError: naming the item and the file of the
      first bad image, unless `config.skip_bad_images`.
  """
  output_dir = os.path.join(model_run_dir, DECODED_IMAGES_DIR)
  summary = item_images.decode_catalogue_images(
      images_uri, list(item_ids), output_dir, config.image_height,
      config.image_width, skip_bad=config.skip_bad_images)
  summary.write(model_run_dir)
  logging.info("Item images: %s", summary.in_words())
  return courier.ItemImages(*item_images.read_decoded_images(
      output_dir, list(item_ids), config.image_height, config.image_width))


def catalogue_classes(catalogue: catalogue_lib.ItemCatalogue,
                      position: int) -> np.ndarray:
  """`[num_items]` each item's category at `position` of its list, -1 if none.

  The class of `image_pretraining.SupervisedImageClassifier`: a category
  index (> 0), never padding.
  """
  categories = catalogue.candidate_features[features.CATEGORY_INDICES]
  return np.where(categories[:, position] > 0, categories[:, position], -1)


def generic_image_table(catalogue: catalogue_lib.ItemCatalogue,
                        images: courier.ItemImages,
                        image_encoder: tf.keras.layers.Layer,
                        config: courier.CourierConfig, seed: int) -> np.ndarray:
  """Trains `image_encoder` with `config.image_objective` (SimCLR or a class
  per item); returns every item's image embedding, zero for an item without
  an image (OOV, or skipped and counted in the run summary)."""
  classes = (catalogue_classes(catalogue, config.image_class_position)
             if config.image_objective == courier.SUPERVISED_OBJECTIVE
             else None)
  losses = image_pretraining.pretrain_encoder(
      config.image_objective, images, image_encoder, config, seed, classes)
  logging.info("Image encoder pre-trained with %s: loss by epoch %s",
               config.image_objective, [round(loss, 4) for loss in losses])
  return image_pretraining.encoder_table(image_encoder, images,
                                         zero_without_image=True)


def config_and_paths(fn_args, hparams: Mapping[str, object], config_class,
                     path_keys: Sequence[str]) -> tuple[object, dict[str, str]]:
  """`train_inputs.seeded_config`, and the file path under each key.

  The paths ("" when absent) are Trainer inputs, not hyperparameters of
  `config_class`.
  """
  hparams = dict(hparams)
  paths = {key: str(hparams.pop(key, "")) for key in path_keys}
  return train_inputs.seeded_config(fn_args, hparams, config_class), paths


def config_and_path(fn_args, hparams: Mapping[str, object], config_class,
                    path_key: str) -> tuple[object, str]:
  """`config_and_paths` for one path."""
  config, paths = config_and_paths(fn_args, hparams, config_class, [path_key])
  return config, paths[path_key]


def train_courier(fn_args, tft_output, hparams: Mapping[str, object],
                  spec: families.FamilySpec) -> None:
  """Pre-trains COURIER on the positive train examples; exports its table.

  Each user's newest train positive is held out (`ctr_validation.hold_out`,
  the ranking Trainer's validation rows); training stops early on
  COURIER's loss there (`loss_validation`) and exports the best epoch.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: `CourierConfig` overrides, plus `external_vectors_path`,
      `images_path` and `image_backbone_path`.
    spec: the family: its name and export (`ctr_export.CourierExportModule`).

  Raises:
    ValueError: for `image_backbone_path`, or an `image_objective` other
      than COURIER's, without `images_path`.
    data.item_images.BadImageError: see `catalogue_images`.
  """
  config, paths = config_and_paths(
      fn_args, hparams, courier.CourierConfig,
      (EXTERNAL_VECTORS_PATH, IMAGES_PATH, IMAGE_BACKBONE_PATH))
  if paths[IMAGE_BACKBONE_PATH] and not paths[IMAGES_PATH]:
    raise ValueError(f"{IMAGE_BACKBONE_PATH} needs {IMAGES_PATH}: a backbone "
                     "encodes the item images")
  if (config.image_objective != courier.COURIER_OBJECTIVE
      and not paths[IMAGES_PATH]):
    raise ValueError(f"image_objective={config.image_objective} needs "
                     f"{IMAGES_PATH}: it trains an image encoder")
  catalogue = catalogue_lib.train_split_catalogue(fn_args, tft_output)
  content = catalogue_content(
      catalogue,
      preprocessing.vocabulary_size(tft_output, features.TITLE_TOKEN_VOCAB),
      train_inputs.run_seed(fn_args), paths[EXTERNAL_VECTORS_PATH])
  images = image_encoder = image_table = None
  if paths[IMAGES_PATH]:
    images = catalogue_images(paths[IMAGES_PATH], catalogue.item_ids,
                              fn_args.model_run_dir, config)
    image_encoder = courier.build_image_encoder(config,
                                                paths[IMAGE_BACKBONE_PATH])
    if config.image_objective != courier.COURIER_OBJECTIVE:
      image_table = generic_image_table(catalogue, images, image_encoder,
                                        config, train_inputs.run_seed(fn_args))
      images = image_encoder = None
  model = courier.Courier(content, config, images, image_encoder)
  held_out = ctr_validation.hold_out(fn_args, tft_output)
  validation = tf.data.Dataset.from_tensor_slices(held_out.positives).batch(
      config.batch_size)
  positives = (
      train_inputs.input_dataset_without(fn_args, tft_output, held_out.mask,
                                         config.batch_size)
      .unbatch()
      .filter(lambda example: example[features.LABEL] > 0.5)
      .batch(config.batch_size, drop_remainder=True))
  early_stopping.fit(model, positives,
                     loss_validation.Validator(model.compute_loss, validation),
                     config, spec.name, fn_args.model_run_dir,
                     metric=loss_validation.METRIC, higher_is_better=False)
  table = courier.item_embedding_table(model.encoder, config.batch_size)
  logging.info("COURIER embedding variance: %.4f",
               courier.embedding_variance(table))
  if images is not None:
    image_table = courier.image_embedding_table(model.encoder,
                                                config.batch_size)
  families.load(spec.export)(catalogue.item_ids, table, image_table).save(
      fn_args.serving_model_dir)


def train_ranking(fn_args, tft_output, hparams: Mapping[str, object],
                  spec: families.FamilySpec) -> None:
  """Trains the CTR ranking model; frozen COURIER features if pre-trained.

  Each user's newest train positive and its negatives are held out
  (`ctr_validation.hold_out`); training stops early on their AUC and exports
  the best epoch (`early_stopping`).

  Args:
    fn_args: the Trainer's FnArgs; `fn_args.base_model` is COURIER's export
      when the pipeline ran the pre-training Trainer.
    tft_output: the Transform output.
    hparams: `RankingConfig` overrides.
    spec: the family: its name and export (`ctr_export.RankingServingModule`).

  Raises:
    ValueError: if the train split has no negative example (ExampleGen ran
      without CTR negatives).
  """
  config = train_inputs.seeded_config(fn_args, hparams,
                                      ranking.RankingConfig)
  item_vocabulary = [token.decode() for token in
                     tft_output.vocabulary_by_name(features.ITEM_VOCAB)]
  content_table = image_table = None
  if fn_args.base_model:
    content_table = ctr_export.load_content_table(fn_args.base_model, item_vocabulary)
    image_table = ctr_export.load_image_table(fn_args.base_model, item_vocabulary)
    logging.info("Frozen content table %s and image table %s from %s",
                 content_table.shape,
                 None if image_table is None else image_table.shape,
                 fn_args.base_model)
  held_out = ctr_validation.hold_out(fn_args, tft_output)
  model = ranking.RankingModel(
      preprocessing.vocabulary_size(tft_output, features.USER_VOCAB),
      len(item_vocabulary) + features.NUM_OOV_BUCKETS + 1, config,
      content_table=content_table, image_table=image_table)
  early_stopping.fit(
      model, train_inputs.input_dataset_without(fn_args, tft_output,
                                                held_out.mask,
                                                config.batch_size),
      ctr_validation.Validator(held_out.rows, model), config, spec.name,
      fn_args.model_run_dir, metric=ctr_validation.METRIC)
  families.load(spec.export)(tft_output.transform_features_layer(),
                             tft_output.raw_feature_spec(), model).save(
                                 fn_args.serving_model_dir)
