"""Trainer families `courier` (pre-training) and `ranking` (CTR), with exports.

`courier` trains COURIER on the positive train examples and exports the item
embedding table (`CourierExportModule`: `item_ids` and `item_embeddings`,
plus an `item_embedding` signature). `ranking` reads that table from
`fn_args.base_model` when the pipeline pre-trained one, aligns it to its own
item vocabulary by raw id (`ranking.align_embedding_table`) and trains the
DIN + DCN-v2 model on the labelled examples; ExampleGen must have written
sampled negatives (label 0). Its export takes raw features, with the
Transform graph inside:

- `serving_default`: user_id, item_id, history_item_ids, timestamp ->
  `probability` of a click;
- `serving_history_queries`: the same plus `history_queries` (the search
  query of each history item, "" for none), which SEMINAR reads;
- `evaluate`: serialized raw tf.Examples -> `probability`, for TFMA's AUC and
  log loss.

In the pipeline, an item's content vector is built from what the Transform
output holds for it (title tokens and categories), optionally concatenated
with an external `item_id -> vector` file (`external_vectors_path`).

Both Trainers hold out each user's newest train positive, and the ranker its
negatives too (`models.ctr_validation`), never train on them, and stop early
on them (`models.early_stopping`): COURIER on its own loss, the ranker on
AUC. The best epoch is exported and the learning curve written to
`learning_curve.json` in the ModelRun directory.
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import tensorflow as tf

from data import item_vectors
from data import features
from models import content_features
from models import courier
from models import ctr_validation
from models import early_stopping
from models import loss_validation
from models import ranking
from models import retrieval_export
from models import serving_names
from models import train_inputs
from transforms import preprocessing

# Hyperparameters of the pipeline families beyond the model configs.
EXTERNAL_VECTORS_PATH = "external_vectors_path"
# The families this module trains, as their learning curves name them.
COURIER = "courier"
RANKING = "ranking"


def catalogue_tokens(catalogue: retrieval_export.ItemCatalogue,
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


def catalogue_content(catalogue: retrieval_export.ItemCatalogue,
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


class CourierExportModule(tf.Module):
  """COURIER's artefact: the frozen item embedding table, by raw item id.

  Args:
    item_ids: `[num_items]` raw ids ("" at padding and OOV).
    table: `[num_items, dim]` embeddings.
  """

  def __init__(self, item_ids: np.ndarray, table: np.ndarray):
    super().__init__()
    self.item_ids = tf.Variable(item_ids.astype(str), trainable=False,
                                name="item_ids")
    self.item_embeddings = tf.Variable(table, trainable=False,
                                       name="item_embeddings")
    known = item_ids.astype(str) != ""
    self._lookup = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(item_ids.astype(str)[known]),
            tf.constant(np.flatnonzero(known), tf.int64)),
        default_value=len(item_ids) - 1)

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name=features.ITEM_ID),))
  def item_embedding(self, item_id):
    """Embedding of each id; unknown ids get the OOV row."""
    return {serving_names.EMBEDDING: tf.gather(self.item_embeddings, self._lookup.lookup(item_id))}

  def save(self, export_dir: str) -> None:
    tf.saved_model.save(self, export_dir, signatures={
        serving_names.ITEM_EMBEDDING: self.item_embedding.get_concrete_function()})


def load_content_table(base_model_dir: str,
                       item_vocabulary: list[str]) -> np.ndarray:
  """COURIER's table, aligned to `item_vocabulary` (see `align_embedding_table`)."""
  loaded = tf.saved_model.load(base_model_dir)
  return ranking.align_embedding_table(
      [item_id.decode() for item_id in loaded.item_ids.numpy()],
      loaded.item_embeddings.numpy(), item_vocabulary)


class RankingServingModule(tf.Module):
  """The ranking SavedModel: raw features in, click probability out.

  Args:
    tft_layer: `TFTransformOutput.transform_features_layer()`.
    raw_feature_spec: `TFTransformOutput.raw_feature_spec()`.
    model: a built (trained) model: transformed features -> `[batch]` click
      logits.
  """

  def __init__(self, tft_layer, raw_feature_spec, model):
    super().__init__()
    self.tft_layer = tft_layer
    self._raw_feature_spec = dict(raw_feature_spec)
    # Only the model's variables are tracked: saving the Keras model itself
    # would also trace every layer's call, which is slow and unused.
    self.model_variables = list(model.variables)
    self._logits = model.__call__

  def _probability(self, transformed: Mapping[str, tf.Tensor]):
    return {serving_names.RANKER_PROBABILITY: tf.sigmoid(self._logits(transformed))}

  def _serve(self, raw: Mapping[str, tf.Tensor]):
    """Scores a request's dense raw features; absent ones are empty."""
    return self._probability(self.tft_layer(
        retrieval_export.complete_raw_features(raw, self._raw_feature_spec)))

  def signatures(self) -> dict:
    """The concrete functions to pass to `tf.saved_model.save`.

    `serving_names.RANKER_HISTORY_QUERIES` is there when the Transform
    reads `history_queries`; models that do not use them ignore them.
    """
    request = (
        tf.TensorSpec([None], tf.string, name=features.USER_ID),
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
        tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
        tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
    )

    @tf.function(input_signature=request)
    def serving_default(user_id, item_id, history_item_ids, timestamp):
      return self._serve({features.USER_ID: user_id, features.ITEM_ID: item_id,
                          features.HISTORY_ITEM_IDS: history_item_ids,
                          features.TIMESTAMP: timestamp})

    # `history_queries` `[batch, history]`, aligned with `history_item_ids`;
    # "" where a history interaction had no query.
    @tf.function(input_signature=request + (
        tf.TensorSpec([None, None], tf.string, name=features.HISTORY_QUERIES),))
    def serving_history_queries(user_id, item_id, history_item_ids, timestamp,
                                history_queries):
      return self._serve({features.USER_ID: user_id, features.ITEM_ID: item_id,
                          features.HISTORY_ITEM_IDS: history_item_ids,
                          features.TIMESTAMP: timestamp,
                          features.HISTORY_QUERIES: history_queries})

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name=serving_names.EXAMPLES),))
    def evaluate(examples):
      raw = tf.io.parse_example(examples, self._raw_feature_spec)
      return self._probability(self.tft_layer(raw))

    signatures = {
        serving_names.DEFAULT: serving_default.get_concrete_function(),
        serving_names.EVALUATE: evaluate.get_concrete_function()}
    if features.HISTORY_QUERIES in self._raw_feature_spec:
      signatures[serving_names.RANKER_HISTORY_QUERIES] = (
          serving_history_queries.get_concrete_function())
    return signatures

  def save(self, export_dir: str) -> None:
    tf.saved_model.save(self, export_dir, signatures=self.signatures())


def config_and_path(fn_args, hparams: Mapping[str, object], config_class,
                    path_key: str) -> tuple[object, str]:
  """`train_inputs.seeded_config`, and the file path under `path_key`.

  The path ("" when absent) is a Trainer input, not a hyperparameter of
  `config_class`.
  """
  hparams = dict(hparams)
  path = str(hparams.pop(path_key, ""))
  return train_inputs.seeded_config(fn_args, hparams, config_class), path


def train_courier(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """Pre-trains COURIER on the positive train examples; exports its table.

  Each user's newest train positive is held out (`ctr_validation.hold_out`,
  the ranking Trainer's validation rows); training stops early on
  COURIER's loss there (`loss_validation`) and exports the best epoch.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: `CourierConfig` overrides, plus `external_vectors_path`.
  """
  config, external_vectors_path = config_and_path(
      fn_args, hparams, courier.CourierConfig, EXTERNAL_VECTORS_PATH)
  catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output)
  content = catalogue_content(
      catalogue,
      preprocessing.vocabulary_size(tft_output, features.TITLE_TOKEN_VOCAB),
      train_inputs.run_seed(fn_args), external_vectors_path)
  model = courier.Courier(content, config)
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
                     config, COURIER, fn_args.model_run_dir,
                     metric=loss_validation.METRIC, higher_is_better=False)
  table = courier.item_embedding_table(model.encoder)
  logging.info("COURIER embedding variance: %.4f",
               courier.embedding_variance(table))
  CourierExportModule(catalogue.item_ids, table).save(fn_args.serving_model_dir)


def train_ranking(fn_args, tft_output, hparams: Mapping[str, object]) -> None:
  """Trains the CTR ranking model; frozen COURIER features if pre-trained.

  Each user's newest train positive and its negatives are held out
  (`ctr_validation.hold_out`); training stops early on their AUC and exports
  the best epoch (`early_stopping`).

  Args:
    fn_args: the Trainer's FnArgs; `fn_args.base_model` is COURIER's export
      when the pipeline ran the pre-training Trainer.
    tft_output: the Transform output.
    hparams: `RankingConfig` overrides.

  Raises:
    ValueError: if the train split has no negative example (ExampleGen ran
      without CTR negatives).
  """
  config = train_inputs.seeded_config(fn_args, hparams,
                                      ranking.RankingConfig)
  item_vocabulary = [token.decode() for token in
                     tft_output.vocabulary_by_name(features.ITEM_VOCAB)]
  content_table = None
  if fn_args.base_model:
    content_table = load_content_table(fn_args.base_model, item_vocabulary)
    logging.info("Frozen content table %s from %s", content_table.shape,
                 fn_args.base_model)
  held_out = ctr_validation.hold_out(fn_args, tft_output)
  model = ranking.RankingModel(
      preprocessing.vocabulary_size(tft_output, features.USER_VOCAB),
      len(item_vocabulary) + features.NUM_OOV_BUCKETS + 1, config,
      content_table=content_table)
  early_stopping.fit(
      model, train_inputs.input_dataset_without(fn_args, tft_output,
                                                held_out.mask,
                                                config.batch_size),
      ctr_validation.Validator(held_out.rows, model), config, RANKING,
      fn_args.model_run_dir, metric=ctr_validation.METRIC)
  RankingServingModule(tft_output.transform_features_layer(),
                       tft_output.raw_feature_spec(), model).save(
                           fn_args.serving_model_dir)
