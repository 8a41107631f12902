"""Tests for the `seminar_psu` and `seminar` Trainer families' pieces."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from data import features
from models import ctr_trainer
from models import seminar
from models import seminar_trainer
from models import serving_names
from models.ctr_trainer_test import RAW_FEATURE_SPEC
from models.ctr_trainer_test import item_indices

NUM_ITEMS = 12
NUM_TOKENS = 9
# Item i has tokens (i % 8) + 1 and ((i + 3) % 8) + 1; item 0 is padding.
ITEM_TOKENS = np.zeros((NUM_ITEMS, 3), np.int64)
ITEM_TOKENS[1:, 0] = np.arange(1, NUM_ITEMS) % 8 + 1
ITEM_TOKENS[1:, 1] = (np.arange(1, NUM_ITEMS) + 3) % 8 + 1


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


def _config(**overrides):
  values = dict(embedding_dim=8, num_heads=2, top_k=2, dropout=0.0,
                num_negatives=5, pq_subspaces=2, num_keywords=1)
  values.update(overrides)
  return seminar.SeminarConfig(**values)


def _rows(*interactions):
  """Positive train examples from (user, item, history, timestamp, query,
  history queries), a history query per history item."""
  count = len(interactions)
  history = np.zeros((count, features.HISTORY_LENGTH), np.int64)
  queries = np.zeros((count, features.QUERY_LENGTH), np.int64)
  history_queries = np.zeros(
      (count, features.HISTORY_LENGTH, features.QUERY_LENGTH), np.int64)
  for row, (_, _, items, _, query, item_queries) in enumerate(interactions):
    history[row, :len(items)] = items
    queries[row, :len(query)] = query
    for position, item_query in enumerate(item_queries):
      history_queries[row, position, :len(item_query)] = item_query
  return {
      features.USER_INDEX: np.array([i[0] for i in interactions]),
      features.ITEM_INDEX: np.array([i[1] for i in interactions]),
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_LENGTH_FEATURE: np.array([len(i[2]) for i in interactions]),
      features.TIMESTAMP_Z: np.array([i[3] for i in interactions], np.float32),
      features.QUERY_TOKEN_INDICES: queries,
      features.HISTORY_QUERY_TOKEN_INDICES: history_queries.reshape(count, -1),
  }


def test_derived_item_keywords_are_fixed_subsets_of_the_item_tokens():
  keywords = seminar_trainer.item_keywords(ITEM_TOKENS, num_keywords=1, width=4)
  assert keywords.shape == (NUM_ITEMS, 4)
  np.testing.assert_array_equal(keywords[0], 0)
  np.testing.assert_array_equal(keywords[:, 1:], 0)
  for item in range(1, NUM_ITEMS):
    assert keywords[item, 0] in ITEM_TOKENS[item, :2]
  np.testing.assert_array_equal(
      keywords, seminar_trainer.item_keywords(ITEM_TOKENS, 1, 4))


def test_training_windows_chain_the_histories_and_prefer_real_queries():
  # User 1 picked 1..5 with histories capped at two items, in shuffled file
  # order, and searched [2, 4] before picking 4; user 2 picked 6 then 7
  # (with a search query); user 3 one item.
  rows = _rows((1, 3, [1, 2], 2.0, [], [[], []]),
               (2, 7, [6], 1.0, [8, 5], [[]]),
               (1, 5, [3, 4], 4.0, [], [[], [2, 4]]),
               (1, 1, [], 0.0, [], []),
               (1, 4, [2, 3], 3.0, [2, 4], [[], []]),
               (2, 6, [], 0.0, [], []),
               (1, 2, [1], 1.0, [], [[]]), (3, 9, [], 0.0, [], []))
  width = features.QUERY_LENGTH + 1
  derived = np.zeros((NUM_ITEMS, width), np.int64)
  derived[:, 0] = np.arange(NUM_ITEMS)
  windows = seminar_trainer.training_windows(rows, derived)
  items = windows["items"][:, :4]
  # Newest window first per user, then every second (the cap) before it.
  assert sorted(map(tuple, items)) == [(1, 2, 3, 0), (3, 4, 5, 0),
                                       (6, 7, 0, 0)]
  assert windows["items"].shape[1] == features.HISTORY_LENGTH + 1
  assert windows["keywords"].shape[1:] == (features.HISTORY_LENGTH + 1, width)
  keywords = {tuple(row_items): row_keywords[:3, :3] for row_items, row_keywords
              in zip(map(tuple, items), windows["keywords"])}
  # The target's own query, and a history item's query from the history.
  np.testing.assert_array_equal(keywords[(6, 7, 0, 0)],
                                [[6, 0, 0], [8, 5, 0], [0, 0, 0]])
  np.testing.assert_array_equal(keywords[(3, 4, 5, 0)],
                                [[3, 0, 0], [2, 4, 0], [5, 0, 0]])
  np.testing.assert_array_equal(keywords[(1, 2, 3, 0)][:, 0], [1, 2, 3])


def test_training_windows_without_queries_use_the_derived_ones():
  rows = _rows((1, 2, [1], 1.0, [], [[]]), (1, 3, [1, 2], 2.0, [], [[], []]))
  derived = np.arange(NUM_ITEMS * 8).reshape(NUM_ITEMS, 8)
  windows = seminar_trainer.training_windows(rows, derived)
  np.testing.assert_array_equal(windows["keywords"],
                                derived[windows["items"]])


def test_read_train_rows_keeps_every_positive_and_a_uniform_sample():
  labels = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0], np.float32)
  count = len(labels)
  rows = {
      features.LABEL: labels,
      features.USER_INDEX: np.arange(count),
      features.ITEM_INDEX: np.arange(count) + 100,
      features.HISTORY_ITEM_INDICES: np.arange(count)[:, np.newaxis] * [1, 1],
      features.HISTORY_LENGTH_FEATURE: np.ones(count, np.int64),
      features.TIMESTAMP_Z: np.zeros(count, np.float32),
      features.QUERY_TOKEN_INDICES: np.zeros((count, 2), np.int64),
      features.HISTORY_QUERY_TOKEN_INDICES: np.zeros((count, 2), np.int64),
  }
  dataset = tf.data.Dataset.from_tensor_slices(rows).batch(3)
  positives, sample = seminar_trainer.read_train_rows(dataset, sample_size=4)
  np.testing.assert_array_equal(positives[features.ITEM_INDEX],
                                [100, 103, 105, 108])
  assert len(sample[features.LABEL]) == 4
  sampled_items = sample[features.ITEM_INDEX]
  assert len(set(sampled_items)) == 4
  for item, label in zip(sampled_items, sample[features.LABEL]):
    assert labels[item - 100] == label
  _, everything = seminar_trainer.read_train_rows(dataset, sample_size=50)
  np.testing.assert_array_equal(everything[features.ITEM_INDEX],
                                np.arange(count) + 100)


def test_fit_calibration_recovers_known_platt_parameters():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=20_000)
  labels = rng.random(20_000) < 1 / (1 + np.exp(-(2.0 * scores - 1.0)))
  slope, intercept = seminar_trainer.fit_calibration(scores, labels)
  assert slope == pytest.approx(2.0, abs=0.1)
  assert intercept == pytest.approx(-1.0, abs=0.1)


def test_calibration_needs_sampled_negatives():
  # Checked before any scoring: the Trainer fails before it exports.
  with pytest.raises(ValueError, match="ctr_negatives"):
    seminar_trainer.calibrate(None, {features.LABEL: np.ones(3, np.float32)})


def _windows():
  items = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0], [9, 10, 11, 1, 0]],
                   np.int64)
  return {"items": items,
          "keywords": seminar.derive_queries(items, ITEM_TOKENS, 1)}


def test_psu_export_restores_into_a_new_retriever(tmp_path):
  tf.keras.utils.set_random_seed(0)
  config = _config()
  pretrainer, _ = seminar.build_seminar(ITEM_TOKENS, NUM_TOKENS, config)
  # One forward pass creates the weights (random, unlike the new models').
  pretrainer.losses_of({name: tf.constant(values)
                        for name, values in _windows().items()})
  settings = {"embedding_dim": 8, "num_keywords": 1}
  seminar_trainer.save_psu(pretrainer, settings, str(tmp_path))
  assert seminar_trainer.read_psu_settings(str(tmp_path)) == settings
  new_pretrainer, retriever = seminar.build_seminar(ITEM_TOKENS, NUM_TOKENS,
                                                    config)
  seminar_trainer.restore_psu(str(tmp_path), new_pretrainer, retriever)
  for restored, trained in ((retriever.encoder, pretrainer.encoder),
                            (retriever.attention, pretrainer.attention)):
    for got, want in zip(restored.get_weights(), trained.get_weights()):
      np.testing.assert_array_equal(got, want)


def test_fine_tuning_inherits_the_psu_settings_and_rejects_conflicts():
  settings = {"embedding_dim": 8, seminar_trainer.IMAGE_VECTORS_PATH: ""}
  assert seminar_trainer.inherit_psu_settings({"epochs": 3}, settings) == {
      "epochs": 3, **settings}
  assert seminar_trainer.inherit_psu_settings(
      {"embedding_dim": 8}, settings) == settings
  with pytest.raises(ValueError, match="embedding_dim"):
    seminar_trainer.inherit_psu_settings({"embedding_dim": 16}, settings)


def _graph_nodes(export_dir: str):
  saved = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, "saved_model.pb"), "rb") as file:
    saved.ParseFromString(file.read())
  graph = saved.meta_graphs[0].graph_def
  return list(graph.node) + [node for function in graph.library.function
                             for node in function.node_def]


def _export(scorer, export_dir):
  ctr_trainer.RankingServingModule(_fake_transform, RAW_SPEC_WITH_QUERIES,
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
  _, retriever = seminar.build_seminar(ITEM_TOKENS, NUM_TOKENS,
                                       _config(pq_centroids=NUM_ITEMS))
  keywords = seminar_trainer.item_keywords(ITEM_TOKENS, 1,
                                           features.QUERY_LENGTH)
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

  exact = _export(seminar_trainer.SeminarScorer(
      retriever, keywords, seminar.ScoringMode.EXACT, calibration=(0.5, -1.0)),
                  str(tmp_path / "exact"))
  retriever.quantize_item_keys()
  pq, pq_xla = (_export(seminar_trainer.SeminarScorer(
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
        (loaded.signatures["serving_default"](**request), expected),
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


def test_unknown_attention_scoring_is_rejected():
  with pytest.raises(ValueError, match="approximate"):
    seminar.SeminarConfig(attention_scoring="approximate")
