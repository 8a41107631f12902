"""Tests for the `courier` and `ranking` Trainer families: early stopping and
exports."""

from __future__ import annotations

import types

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from data import features
from data import item_images as item_images_data
from models import catalogue as catalogue_lib
from models.ctr import courier
from models.ctr import export as ctr_export
from models.ctr import export_testing
from models.ctr import image_pretraining
from models.ctr import ranking
from models.ctr import trainer as ctr_trainer
from models.ctr import validation as ctr_validation
from models import families
from models import learning_curve
from models import serving_names
from models import trainer_testing
from transforms import item_images

RAW_FEATURE_SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.HISTORY_ITEM_IDS: tf.io.VarLenFeature(tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.LABEL: tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
}


def item_indices(ids: tf.Tensor) -> tf.Tensor:
  """Raw ids "1", "2", ... are their own indices; "" is padding."""
  return tf.strings.to_number(tf.where(ids == "", "0", ids), tf.int64)


def _fake_transform(raw):
  """Stands in for the Transform layer on the features the ranker reads."""
  return {
      features.USER_INDEX: tf.ones_like(tf.reshape(raw[features.TIMESTAMP], [-1])),
      features.ITEM_INDEX: item_indices(tf.reshape(raw[features.ITEM_ID], [-1])),
      features.HISTORY_ITEM_INDICES: item_indices(
          tf.sparse.to_dense(raw[features.HISTORY_ITEM_IDS])),
  }


def test_courier_export_looks_ids_up_and_aligns_to_another_vocabulary(tmp_path):
  table = np.array([[0, 0], [1, 1], [2, 2], [0, 0]], np.float32)
  ctr_export.CourierExportModule(
      np.array(["", "a", "b", ""], dtype=object), table).save(str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  embedding = loaded.signatures[serving_names.ITEM_EMBEDDING](
      item_id=tf.constant(["b", "zzz", "a"]))[serving_names.EMBEDDING].numpy()
  np.testing.assert_array_equal(embedding, [[2, 2], [0, 0], [1, 1]])
  aligned = ctr_export.load_content_table(str(tmp_path), ["b", "new", "a"])
  np.testing.assert_array_equal(aligned, [[0, 0], [2, 2], [0, 0], [1, 1], [0, 0]])


def test_ranking_export_serves_and_evaluates_the_same_probability(tmp_path):
  tf.keras.utils.set_random_seed(0)
  model = ranking.RankingModel(
      3, 6, ranking.RankingConfig(embedding_dim=4, attention_units=(4,),
                                  deep_units=(4,)),
      content_table=np.eye(6, dtype=np.float32))
  expected = tf.sigmoid(model(_fake_transform({
      features.TIMESTAMP: tf.zeros([2, 1], tf.int64),
      features.ITEM_ID: tf.constant([["3"], ["4"]]),
      features.HISTORY_ITEM_IDS: tf.sparse.from_dense(
          tf.constant([["1", "2"], ["", ""]]))}))).numpy()
  ctr_export.RankingServingModule(_fake_transform, RAW_FEATURE_SPEC,
                                       model).save(str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  served = loaded.signatures[serving_names.DEFAULT](
      user_id=tf.constant(["u", "u"]), item_id=tf.constant(["3", "4"]),
      history_item_ids=tf.constant([["1", "2"], ["", ""]]),
      timestamp=tf.zeros([2], tf.int64))[serving_names.RANKER_PROBABILITY].numpy()
  example = tf.train.Example()
  for name, value in ((features.USER_ID, b"u"), (features.ITEM_ID, b"3")):
    example.features.feature[name].bytes_list.value.append(value)
  example.features.feature[features.HISTORY_ITEM_IDS].bytes_list.value.extend(
      [b"1", b"2"])
  example.features.feature[features.TIMESTAMP].int64_list.value.append(0)
  evaluated = loaded.signatures[serving_names.EVALUATE](
      examples=tf.constant([example.SerializeToString()]))
  assert served.shape == (2,)
  np.testing.assert_allclose(served, expected, rtol=1e-5)
  np.testing.assert_allclose(
      evaluated[serving_names.RANKER_PROBABILITY].numpy(), expected[:1], rtol=1e-5)


def test_catalogue_content_shares_one_token_space_for_titles_and_categories():
  catalogue = catalogue_lib.ItemCatalogue(
      item_ids=np.array(["", "a", "b", ""], dtype=object),
      candidate_features={
          features.ITEM_INDEX: np.arange(4),
          features.TITLE_TOKEN_INDICES: np.array([[0, 0], [1, 2], [1, 0], [0, 0]]),
          features.CATEGORY_INDICES: np.array([[0], [1], [1], [0]]),
      },
      train_counts=np.array([0, 1, 1, 0]))
  content = ctr_trainer.catalogue_content(catalogue, num_title_tokens=4,
                                          seed=0)
  # Title tokens 1..3 and one category: four token columns.
  assert content.shape == (4, 4)
  np.testing.assert_array_equal(content[0], 0)
  assert content[1, 3] > 0 and content[2, 3] > 0 and content[1, 1] > 0


def _seeded_draw(custom_config):
  fn_args = types.SimpleNamespace(custom_config=custom_config)
  config, path = ctr_trainer.config_and_path(
      fn_args, {"embedding_dim": 4, "vectors": "v.npz"}, ranking.RankingConfig,
      "vectors")
  assert (config.embedding_dim, path) == (4, "v.npz")
  return tf.random.uniform([3]).numpy()


def test_trainers_seed_tf_with_the_run_seed():
  without_seed = _seeded_draw(None)
  np.testing.assert_array_equal(without_seed, _seeded_draw({"seed": 0}))
  np.testing.assert_array_equal(_seeded_draw({"seed": 7}),
                                _seeded_draw({"seed": 7}))
  assert not np.array_equal(_seeded_draw({"seed": 7}), without_seed)


def _index_transform(raw):
  """Raw user and item ids are their own indices ("" is padding)."""
  return {
      features.USER_INDEX: item_indices(tf.reshape(raw[features.USER_ID],
                                                   [-1])),
      features.ITEM_INDEX: item_indices(tf.reshape(raw[features.ITEM_ID],
                                                   [-1])),
      features.HISTORY_ITEM_INDICES: item_indices(
          tf.sparse.to_dense(raw[features.HISTORY_ITEM_IDS])),
  }


# Random clicks on a small catalogue: the validation AUC wanders from epoch
# to epoch, so patience 1 stops the fit well before the last epoch.
_EARLY_STOPPED = {"epochs": 10, "early_stopping_patience": 1,
                  "batch_size": 32, "embedding_dim": 4,
                  "attention_units": (4,), "deep_units": (4,)}


@pytest.fixture(scope="module")
def trained_ranker(tmp_path_factory):
  """FnArgs, train split and learning curve of an in-memory ranking fit."""
  train, evaluation = trainer_testing.ctr_rows(
      num_users=40, positives_per_user=6, negatives=2, num_items=30, seed=0)
  fn_args = trainer_testing.fn_args(
      {trainer_testing.TRAIN: train, trainer_testing.EVAL: evaluation},
      str(tmp_path_factory.mktemp("ranking")))
  ctr_trainer.train_ranking(
      fn_args, trainer_testing.TransformOutput(
          trainer_testing.vocabularies(40, 30, 8), _index_transform,
          RAW_FEATURE_SPEC), dict(_EARLY_STOPPED),
      families.get("ranking"))
  return fn_args, train, learning_curve.read(fn_args.model_run_dir)


def test_ranking_stops_after_patience_epochs_without_a_better_auc(
    trained_ranker):
  _, _, curve = trained_ranker
  assert (curve.family, curve.metric) == ("ranking", "auc")
  steps = [point.step for point in curve.points]
  assert steps == list(range(1, len(steps) + 1))
  assert len(steps) < _EARLY_STOPPED["epochs"]
  assert len(steps) == curve.best + _EARLY_STOPPED["early_stopping_patience"]
  assert curve.points[curve.best - 1].validation == max(
      point.validation for point in curve.points)


def test_ranking_exports_the_best_epochs_weights(trained_ranker):
  fn_args, train, curve = trained_ranker
  held_out = ctr_validation.held_out_rows([train])
  rows = {name: values[held_out] for name, values in train.items()}
  auc = trainer_testing.served_auc(fn_args.serving_model_dir, rows)
  assert auc == pytest.approx(curve.points[curve.best - 1].validation,
                              abs=1e-4)
  assert abs(auc - curve.points[-1].validation) > 1e-3


def test_ranking_never_reads_the_eval_split(trained_ranker):
  fn_args, _, _ = trained_ranker
  assert set(fn_args.data_accessor.read) == {trainer_testing.TRAIN}


def test_courier_keeps_its_lowest_validation_loss_and_reads_train_only(
    tmp_path):
  train, evaluation = trainer_testing.ctr_rows(
      num_users=20, positives_per_user=5, negatives=1, num_items=16, seed=2)
  fn_args = trainer_testing.fn_args(
      {trainer_testing.TRAIN: train, trainer_testing.EVAL: evaluation},
      str(tmp_path))
  ctr_trainer.train_courier(
      fn_args, trainer_testing.TransformOutput(
          trainer_testing.vocabularies(20, 16, 8), None, {}),
      {"epochs": 3, "batch_size": 8, "encoder_units": (8, 4)},
      families.get("courier"))
  curve = learning_curve.read(fn_args.model_run_dir)
  assert (curve.family, curve.metric) == ("courier", "loss")
  assert curve.points[curve.best - 1].validation == min(
      point.validation for point in curve.points)
  assert set(fn_args.data_accessor.read) == {trainer_testing.TRAIN}
  assert tf.saved_model.load(fn_args.serving_model_dir).item_embeddings.shape[
      1] == 4


def test_courier_export_carries_image_embeddings_aligned_like_the_content(
    tmp_path):
  item_ids = np.array(["", "a", "b", ""], dtype=object)
  content = np.zeros((4, 2), np.float32)
  images = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [0, 0, 0]], np.float32)
  ctr_export.CourierExportModule(item_ids, content, images).save(
      str(tmp_path / "with"))
  np.testing.assert_array_equal(
      ctr_export.load_image_table(str(tmp_path / "with"), ["b", "new", "a"]),
      [[0, 0, 0], [2, 2, 2], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
  ctr_export.CourierExportModule(item_ids, content).save(
      str(tmp_path / "without"))
  assert ctr_export.load_image_table(str(tmp_path / "without"), ["a"]) is None


def _write_images(folder, item_ids, skip=()):
  """A 6x4 RGB PNG per item id, one grey level each; none for `skip`."""
  folder.mkdir()
  for number, item_id in enumerate(item_ids):
    if item_id not in skip:
      Image.new("RGB", (4, 6), (number * 9,) * 3).save(folder / f"{item_id}.png")
  return folder


_IMAGE_HPARAMS = {"epochs": 1, "batch_size": 8, "encoder_units": (8, 4),
                  "image_height": 6, "image_width": 4, "image_filters": (4,),
                  "image_embedding_dim": 3}


@pytest.fixture(scope="module")
def courier_with_images(tmp_path_factory):
  """COURIER pre-trained on 16 items' images, then a ranker on its export."""
  root = tmp_path_factory.mktemp("images")
  train, evaluation = trainer_testing.ctr_rows(
      num_users=20, positives_per_user=5, negatives=1, num_items=16, seed=2)
  splits = {trainer_testing.TRAIN: train, trainer_testing.EVAL: evaluation}
  vocabularies = trainer_testing.vocabularies(20, 16, 8)
  images = _write_images(root / "images", vocabularies[features.ITEM_VOCAB])
  pretrained = trainer_testing.fn_args(splits, str(root / "courier"))
  ctr_trainer.train_courier(
      pretrained, trainer_testing.TransformOutput(vocabularies, None, {}),
      {**_IMAGE_HPARAMS, ctr_trainer.IMAGES_PATH: str(images)},
      families.get("courier"))
  ranker = trainer_testing.fn_args(splits, str(root / "ranking"),
                                   base_model=pretrained.serving_model_dir)
  ctr_trainer.train_ranking(
      ranker, trainer_testing.TransformOutput(vocabularies, _index_transform,
                                              RAW_FEATURE_SPEC),
      {"epochs": 1, "batch_size": 32, "embedding_dim": 4,
       "attention_units": (4,), "deep_units": (4,)}, families.get("ranking"))
  return pretrained, ranker, vocabularies


def test_courier_decodes_the_catalogue_images_and_exports_their_embeddings(
    courier_with_images):
  pretrained, _, vocabularies = courier_with_images
  summary = item_images.read_summary(pretrained.model_run_dir)
  assert (summary.items, summary.decoded, summary.skipped) == (16, 16, {})
  loaded = tf.saved_model.load(pretrained.serving_model_dir)
  assert loaded.image_embeddings.shape == (18, 3)
  # One grey level per item: every item's image embedding differs.
  rows = loaded.image_embeddings.numpy()[1:17]
  assert len(np.unique(rows.round(6), axis=0)) == 16
  assert len(vocabularies[features.ITEM_VOCAB]) == 16


def test_the_ranker_serves_stored_image_embeddings_and_decodes_no_image(
    courier_with_images):
  pretrained, ranker, _ = courier_with_images
  loaded = tf.saved_model.load(ranker.serving_model_dir)
  image_table = ctr_export.load_image_table(
      pretrained.serving_model_dir, [str(i) for i in range(1, 17)])
  assert not export_testing.decode_ops(ranker.serving_model_dir)
  # The stored table is in the export: the served model needs no images.
  assert any(np.array_equal(constant, image_table)
             for constant in export_testing.float_constants(
                 ranker.serving_model_dir))
  served = loaded.signatures[serving_names.DEFAULT](
      user_id=tf.constant(["1", "1"]), item_id=tf.constant(["3", "4"]),
      history_item_ids=tf.constant([["1", "2"], ["1", "2"]]),
      timestamp=tf.zeros([2], tf.int64))[serving_names.RANKER_PROBABILITY]
  assert served.shape == (2,) and served[0] != served[1]


def _courier_run_without_item_7_image(tmp_path):
  """COURIER's Trainer inputs, with every catalogue image but item 7's:
  `(fn_args, vocabularies, images folder)`."""
  train, evaluation = trainer_testing.ctr_rows(
      num_users=20, positives_per_user=5, negatives=1, num_items=16, seed=2)
  vocabularies = trainer_testing.vocabularies(20, 16, 8)
  images = _write_images(tmp_path / "images",
                         vocabularies[features.ITEM_VOCAB], skip=("7",))
  fn_args = trainer_testing.fn_args(
      {trainer_testing.TRAIN: train, trainer_testing.EVAL: evaluation},
      str(tmp_path / "courier"))
  return fn_args, vocabularies, images


def test_courier_stops_at_a_bad_image_naming_the_item_and_the_file(tmp_path):
  fn_args, vocabularies, images = _courier_run_without_item_7_image(tmp_path)
  with pytest.raises(item_images_data.BadImageError,
                     match=r"image of item '7' \(.*7\{\.jpg\|\.jpeg\|\.png\}\)"):
    ctr_trainer.train_courier(
        fn_args, trainer_testing.TransformOutput(vocabularies, None, {}),
        {**_IMAGE_HPARAMS, ctr_trainer.IMAGES_PATH: str(images)},
        families.get("courier"))


def test_courier_skips_and_counts_bad_images_when_asked(tmp_path):
  fn_args, vocabularies, images = _courier_run_without_item_7_image(tmp_path)
  ctr_trainer.train_courier(
      fn_args, trainer_testing.TransformOutput(vocabularies, None, {}),
      {**_IMAGE_HPARAMS, ctr_trainer.IMAGES_PATH: str(images),
       "skip_bad_images": True}, families.get("courier"))
  summary = item_images.read_summary(fn_args.model_run_dir)
  assert (summary.items, summary.decoded) == (16, 15)
  assert [record["item_id"] for record in
          summary.skipped[item_images_data.MISSING]] == ["7"]
  # Item 7 (index 7) reads the learned "no image" row, like no other item.
  table = tf.saved_model.load(fn_args.serving_model_dir).image_embeddings.numpy()
  assert np.abs(table[7]).sum() > 0
  assert not any(np.allclose(table[7], table[index])
                 for index in range(1, 17) if index != 7)


def test_a_backbone_without_images_is_refused(tmp_path):
  with pytest.raises(ValueError, match="image_backbone_path needs images_path"):
    ctr_trainer.train_courier(
        trainer_testing.fn_args({}, str(tmp_path)), None,
        {ctr_trainer.IMAGE_BACKBONE_PATH: "backbone.keras"},
        families.get("courier"))


@pytest.mark.parametrize("objective", [courier.SIMCLR_OBJECTIVE,
                                       courier.SUPERVISED_OBJECTIVE])
def test_a_generic_image_objective_trains_the_encoder_the_export_carries(
    tmp_path, monkeypatch, objective):
  fn_args, vocabularies, images = _courier_run_without_item_7_image(tmp_path)
  calls = []
  pretrain = image_pretraining.pretrain_encoder

  def recorded(objective, images, encoder, config, seed, classes=None):
    calls.append((objective, classes, encoder))
    return pretrain(objective, images, encoder, config, seed, classes)

  monkeypatch.setattr(image_pretraining, "pretrain_encoder", recorded)
  ctr_trainer.train_courier(
      fn_args, trainer_testing.TransformOutput(vocabularies, None, {}),
      {**_IMAGE_HPARAMS, ctr_trainer.IMAGES_PATH: str(images),
       "skip_bad_images": True, "image_objective": objective},
      families.get("courier"))
  [(called_objective, classes, encoder)] = calls
  assert called_objective == objective
  if objective == courier.SUPERVISED_OBJECTIVE:
    # The class is the category at position 0: 1 or 2 by the item's parity
    # (`trainer_testing.ctr_rows`); padding and OOV have none.
    np.testing.assert_array_equal(classes[1:17], np.arange(1, 17) % 2 + 1)
    assert classes[0] == classes[17] == -1
  else:
    assert classes is None
  loaded = tf.saved_model.load(fn_args.serving_model_dir)
  table = loaded.image_embeddings.numpy()
  decoded = courier.ItemImages(*item_images.read_decoded_images(
      str(tmp_path / "courier" / "model_run" / ctr_trainer.DECODED_IMAGES_DIR),
      [""] + [str(i) for i in range(1, 17)] + [""], 6, 4))
  np.testing.assert_allclose(
      table, image_pretraining.encoder_table(encoder, decoded,
                                             zero_without_image=True),
      rtol=1e-5, atol=1e-6)
  # Item 7, skipped and counted, and the OOV row read zero; every image
  # differs.
  assert not table[[0, 7, 17]].any()
  rows = np.delete(table[1:17], 6, axis=0)
  assert len(np.unique(rows.round(6), axis=0)) == 15


def test_a_generic_image_objective_without_images_is_refused(tmp_path):
  with pytest.raises(ValueError, match="image_objective=simclr needs images_path"):
    ctr_trainer.train_courier(
        trainer_testing.fn_args({}, str(tmp_path)), None,
        {"image_objective": "simclr"}, families.get("courier"))


def test_an_unknown_image_objective_or_class_position_is_refused():
  with pytest.raises(ValueError, match="image_objective must be one of"):
    courier.CourierConfig(image_objective="clip")
  with pytest.raises(ValueError, match=r"image_class_position must be in \[0, 8\)"):
    courier.CourierConfig(image_class_position=8)
