"""Tests for the `seminar_psu` and `seminar` Trainers: early stopping and the
export."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from data import derived_queries
from data import features
from models.ctr import export as ctr_export
from models.ctr.trainer_test import item_indices
from models.ctr.trainer_test import RAW_FEATURE_SPEC
from models.ctr import validation as ctr_validation
from models import families
from models import learning_curve
from models.seminar import export as seminar_export
from models.seminar import model as seminar
from models.seminar.model_test import ITEM_TOKENS
from models.seminar.model_test import NUM_ITEMS
from models.seminar.model_test import NUM_TOKENS
from models.seminar.model_test import small_config
from models.seminar import psu as seminar_psu
from models.seminar import trainer as seminar_trainer
from models import serving_names
from models import trainer_testing


RAW_SPEC_WITH_QUERIES = {
    **RAW_FEATURE_SPEC,
    features.HISTORY_QUERIES: tf.io.VarLenFeature(tf.string)}


def _query_tokens(queries: tf.Tensor) -> tf.Tensor:
  """`[B, L]` queries of space-separated token indices ("3 5") ->
  `[B, L * QUERY_LENGTH]`, as Transform lays out history query tokens."""
  tokens = tf.strings.to_number(tf.strings.split(queries), tf.int64)
  dense = tokens.to_tensor(shape=tf.concat(
      [tf.shape(queries, out_type=tf.int64), [features.QUERY_LENGTH]], 0))
  return tf.reshape(dense, [tf.shape(queries)[0], -1])


def _fake_transform(raw):
  """Stands in for the Transform layer on the features SEMINAR reads."""
  history = item_indices(tf.sparse.to_dense(raw[features.HISTORY_ITEM_IDS]))
  queries = raw[features.HISTORY_QUERIES]
  # Densified by position and as wide as the history, as Transform does.
  queries = tf.sparse.to_dense(tf.sparse.reset_shape(
      queries, [queries.dense_shape[0], tf.shape(history, tf.int64)[1]]))
  return {
      features.ITEM_INDEX: item_indices(tf.reshape(raw[features.ITEM_ID], [-1])),
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_QUERY_TOKEN_INDICES: _query_tokens(queries),
  }


def _graph_nodes(export_dir: str):
  saved = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, "saved_model.pb"), "rb") as file:
    saved.ParseFromString(file.read())
  graph = saved.meta_graphs[0].graph_def
  return list(graph.node) + [node for function in graph.library.function
                             for node in function.node_def]


def _export(scorer, export_dir):
  ctr_export.RankingServingModule(_fake_transform, RAW_SPEC_WITH_QUERIES,
                                       scorer).save(export_dir)
  return tf.saved_model.load(export_dir)


def _serialized(item_id: str, history: list[str],
                history_queries: list[str] | None = None) -> bytes:
  """An eval example; without `history_queries`, as written before them."""
  example = tf.train.Example()
  example.features.feature[features.USER_ID].bytes_list.value.append(b"u")
  example.features.feature[features.ITEM_ID].bytes_list.value.append(
      item_id.encode())
  example.features.feature[features.HISTORY_ITEM_IDS].bytes_list.value.extend(
      [item.encode() for item in history])
  if history_queries is not None:
    example.features.feature[features.HISTORY_QUERIES].bytes_list.value.extend(
        [query.encode() for query in history_queries])
  example.features.feature[features.TIMESTAMP].int64_list.value.append(0)
  return example.SerializeToString()


def test_exports_serve_the_model_with_real_or_derived_history_queries(
    tmp_path):
  tf.keras.utils.set_random_seed(0)
  # As many centroids as items: PQ is lossless, so its top-K selection and
  # scores equal the exact ones.
  # Random weights: the export must reproduce whatever the model computes.
  _, retriever = seminar_psu.build_seminar(
      ITEM_TOKENS, NUM_TOKENS, small_config(top_k=2, pq_centroids=NUM_ITEMS))
  keywords = derived_queries.item_keywords(ITEM_TOKENS, 1,
                                           features.QUERY_LENGTH, seed=0)
  history = [["1", "2", "3", "4", "5"], ["6", "7", "", "", ""]]
  no_queries = [[""] * 5] * 2
  # User 0 searched tokens 3 and 5 before picking item 2.
  queries = [["", "3 5", "", "", ""], no_queries[1]]
  candidates = ["9", "10"]
  history_indices = item_indices(tf.constant(history))
  candidate_indices = item_indices(tf.constant(candidates))[:, tf.newaxis]

  def model_probability(history_keywords):
    return tf.sigmoid(0.5 * retriever.score(
        history_indices, history_keywords, candidate_indices)[:, 0]
                      - 1.0).numpy()

  derived = tf.gather(keywords, history_indices).numpy()
  expected = model_probability(derived)
  searched = derived.copy()
  searched[0, 1] = [3, 5] + [0] * (features.QUERY_LENGTH - 2)
  expected_searched = model_probability(searched)
  # The real query changes user 0's score only.
  assert abs(expected_searched[0] - expected[0]) > 1e-4
  assert expected_searched[1] == pytest.approx(expected[1], rel=1e-6)

  exact = _export(seminar_export.SeminarScorer(
      retriever, keywords, seminar.ScoringMode.EXACT, calibration=(0.5, -1.0)),
                  str(tmp_path / "exact"))
  retriever.quantize_item_keys()
  pq, pq_xla = (_export(seminar_export.SeminarScorer(
      retriever, keywords, mode, calibration=(0.5, -1.0)),
                        str(tmp_path / mode.value))
                for mode in (seminar.ScoringMode.PQ,
                             seminar.ScoringMode.PQ_XLA))
  request = dict(user_id=tf.constant(["u", "u"]),
                 item_id=tf.constant(candidates),
                 history_item_ids=tf.constant(history),
                 timestamp=tf.zeros([2], tf.int64))
  for loaded in (exact, pq, pq_xla):
    with_queries = loaded.signatures[serving_names.RANKER_HISTORY_QUERIES]
    evaluate = loaded.signatures[serving_names.EVALUATE]
    for served, want in (
        (loaded.signatures[serving_names.DEFAULT](**request), expected),
        (with_queries(**request, history_queries=tf.constant(no_queries)),
         expected),
        (with_queries(**request, history_queries=tf.constant(queries)),
         expected_searched),
        (evaluate(examples=tf.constant([
            _serialized(item, items) for item, items
            in zip(candidates, history)])), expected),
        (evaluate(examples=tf.constant([
            _serialized(item, items, item_queries) for item, items,
            item_queries in zip(candidates, history, queries)])),
         expected_searched)):
      np.testing.assert_allclose(served[serving_names.RANKER_PROBABILITY].numpy(),
                                 want, rtol=1e-5)

  # The PQ export holds the item codes as a constant and never encodes.
  nodes = _graph_nodes(str(tmp_path / "pq"))
  codes = [tf.make_ndarray(node.attr["value"].tensor) for node in nodes
           if node.op == "Const" and node.attr["dtype"].type == types_pb2.DT_UINT8]
  assert any(np.array_equal(code, retriever.item_key_codes.numpy())
             for code in codes)
  assert not any(node.op == "ArgMin" for node in nodes)
  assert not any(node.op == "Const" and
                 node.attr["dtype"].type == types_pb2.DT_UINT8
                 for node in _graph_nodes(str(tmp_path / "exact")))


# Tiny and fast; random clicks, so the fine-tuned AUC wanders from epoch to
# epoch and patience 1 stops it before the last epoch.
_TINY = {"embedding_dim": 8, "num_heads": 2, "top_k": 3, "dropout": 0.0,
         "num_negatives": 5, "batch_size": 16, "num_keywords": 1,
         "early_stopping_patience": 1}
_PSU_EPOCHS = 3
_SEMINAR_EPOCHS = 10


@pytest.fixture(scope="module")
def trained_seminar(tmp_path_factory):
  """The PSU's and the retriever's FnArgs, and the train split."""
  train, evaluation = trainer_testing.ctr_rows(
      num_users=30, positives_per_user=6, negatives=2, num_items=24, seed=1)
  splits = {trainer_testing.TRAIN: train, trainer_testing.EVAL: evaluation}
  transform_output = trainer_testing.TransformOutput(
      trainer_testing.vocabularies(30, 24, NUM_TOKENS), _fake_transform,
      RAW_SPEC_WITH_QUERIES)
  psu_args = trainer_testing.fn_args(splits,
                                     str(tmp_path_factory.mktemp("psu")))
  seminar_trainer.train_seminar_psu(psu_args, transform_output,
                                    {**_TINY, "epochs": _PSU_EPOCHS},
                                    families.get("seminar_psu"))
  seminar_args = trainer_testing.fn_args(
      splits, str(tmp_path_factory.mktemp("seminar")),
      base_model=psu_args.serving_model_dir)
  seminar_trainer.train_seminar(seminar_args, transform_output,
                                {**_TINY, "epochs": _SEMINAR_EPOCHS},
                                families.get("seminar"))
  return psu_args, seminar_args, train


def test_psu_keeps_the_epoch_with_the_lowest_validation_loss(trained_seminar):
  psu_args, _, _ = trained_seminar
  curve = learning_curve.read(psu_args.model_run_dir)
  assert (curve.family, curve.metric) == ("seminar_psu", "loss")
  assert 1 <= len(curve.points) <= _PSU_EPOCHS
  assert curve.points[curve.best - 1].validation == min(
      point.validation for point in curve.points)


def test_seminar_stops_after_patience_epochs_without_a_better_auc(
    trained_seminar):
  _, seminar_args, _ = trained_seminar
  curve = learning_curve.read(seminar_args.model_run_dir)
  assert (curve.family, curve.metric) == ("seminar", "auc")
  assert len(curve.points) < _SEMINAR_EPOCHS
  assert len(curve.points) == curve.best + _TINY["early_stopping_patience"]
  assert curve.points[curve.best - 1].validation == max(
      point.validation for point in curve.points)


def test_seminar_exports_the_best_epochs_weights(trained_seminar):
  _, seminar_args, train = trained_seminar
  curve = learning_curve.read(seminar_args.model_run_dir)
  held_out = ctr_validation.held_out_rows([train])
  rows = {name: values[held_out] for name, values in train.items()}
  auc = trainer_testing.served_auc(seminar_args.serving_model_dir, rows)
  # Platt scaling is monotone: increasing unless its slope came out
  # negative, which reverses the order.
  distance = min(abs(auc - curve.points[curve.best - 1].validation),
                 abs(1 - auc - curve.points[curve.best - 1].validation))
  assert distance < 1e-4
  assert abs(auc - curve.points[-1].validation) > 1e-3
  assert abs(1 - auc - curve.points[-1].validation) > 1e-3


def test_seminar_trainers_never_read_the_eval_split(trained_seminar):
  for fn_args in trained_seminar[:2]:
    assert set(fn_args.data_accessor.read) == {trainer_testing.TRAIN}
