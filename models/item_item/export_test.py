"""Tests for the item-item serving signatures (families `ease`, `item_knn`)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from models import catalogue as catalogue_lib
from models import catalogue_scoring
from models import export_testing
from models.item_item import export as item_item_export
from models.item_item import neighbours as item_neighbours
from models import serving_names

# Item indices 0..5: 0 is padding, 1..4 are items "1".."4", 5 is OOV.
_ITEM_IDS = np.array(["", "1", "2", "3", "4", ""], dtype=object)
_TRAIN_COUNTS = np.array([0, 3, 1, 2, 5, 0], np.float64)
# Dense B; the export holds each row's top 2.
_B = np.array([[0, 0, 0, 0, 0, 0],
               [0, 0, 0.9, 0.5, 0.1, 0],
               [0, 0.2, 0, 0.8, 0.4, 0],
               [0, 0.3, 0.6, 0, 0.7, 0],
               [0, 0.1, 0.2, 0.3, 0, 0],
               [0, 0, 0, 0, 0, 0]], np.float64)
_K = 2


def _neighbours() -> item_neighbours.ItemNeighbours:
  return item_neighbours.top_neighbours(lambda rows: _B[rows].copy(),
                                        len(_B), _K)


def _export(directory: str,
            cells_per_chunk: int = catalogue_scoring.CELLS_PER_CHUNK) -> str:
  item_item_export.ItemNeighboursServingModule(
      export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC,
      _neighbours(),
      catalogue_lib.ItemCatalogue(
          item_ids=_ITEM_IDS, candidate_features={},
          train_counts=_TRAIN_COUNTS),
      cells_per_chunk).save(directory)
  return directory


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> str:
  return _export(str(tmp_path_factory.mktemp("item_item_export")))


def _brute_force_rank(scores: np.ndarray, history: list[int],
                      target: int) -> float:
  """`retrieval_export`'s rule in numpy: available competitors scoring at
  least as high (ties count against the target); the history, padding and
  OOV are unavailable."""
  available = (_TRAIN_COUNTS > 0)
  available[history] = False
  competitors = available.copy()
  competitors[target] = False
  return np.sum(competitors & (scores >= scores[target]))


def test_retrieve_excludes_the_history_and_scores_by_sparse_b(export_dir):
  loaded = tf.saved_model.load(export_dir)
  top = loaded.signatures[serving_names.DEFAULT](
      **export_testing.query_inputs([["1", "2"], ["4", ""]]))
  ids = top[serving_names.ITEM_IDS].numpy().astype(str)
  scores = top[serving_names.SCORES].numpy()
  # User 1: B[1] keeps items 2 (0.9) and 3 (0.5); B[2] keeps 3 (0.8) and
  # 4 (0.4). Items 1 and 2 are the history.
  assert ids[0, :2].tolist() == ["3", "4"]
  np.testing.assert_allclose(scores[0, :2], [1.3, 0.4], rtol=1e-6)
  # User 2: B[4] keeps 3 (0.3) and 2 (0.2); item 1 scores 0.
  assert ids[1, :3].tolist() == ["3", "2", "1"]
  np.testing.assert_allclose(scores[1, :3], [0.3, 0.2, 0.0], atol=1e-6)


def test_query_times_candidate_embedding_is_the_score(export_dir):
  signatures = tf.saved_model.load(export_dir).signatures
  query = signatures[serving_names.QUERY_EMBEDDING](
      **export_testing.query_inputs([["1", "2"]]))[serving_names.EMBEDDING]
  candidates = signatures[serving_names.CANDIDATE_EMBEDDING](
      item_id=tf.constant(["1", "2", "3", "4"]),
      item_title=tf.constant([""] * 4),
      item_categories=tf.constant([[""]] * 4))[serving_names.EMBEDDING]
  np.testing.assert_allclose(query.numpy(), [[0, 1, 1, 0, 0, 0]])
  # B[2, 1] = 0.2 is not among item 2's top 2, so item 1 scores 0.
  np.testing.assert_allclose((query.numpy() @ candidates.numpy().T)[0],
                             [0, 0.9, 1.3, 0.4], rtol=1e-6)


def test_evaluate_ranks_like_a_brute_force_ranking(export_dir):
  cases = [("3", ["1"]), ("4", ["1", "2"]), ("1", ["4"]), ("2", [])]
  ranks = tf.saved_model.load(export_dir).signatures[serving_names.EVALUATE](
      examples=tf.constant([export_testing.serialized_example(target, history)
                            for target, history in cases]))
  sparse_b = _neighbours().matrix().toarray()
  expected, expected_popularity = [], []
  for target, history in cases:
    history_indices = [int(item) for item in history]
    scores = sparse_b[history_indices].sum(axis=0)
    expected.append(_brute_force_rank(scores, history_indices, int(target)))
    expected_popularity.append(
        _brute_force_rank(_TRAIN_COUNTS, history_indices, int(target)))
  np.testing.assert_allclose(ranks[serving_names.TARGET_RANK].numpy(), expected)
  np.testing.assert_allclose(
      ranks[serving_names.POPULARITY_TARGET_RANK].numpy(), expected_popularity)
  # Not vacuous: after item 1, item 3 (0.5) is beaten by item 2 alone.
  assert expected[0] == 1.0


def test_loads_and_serves_in_a_bare_tensorflow_process(export_dir):
  printed = export_testing.run_in_bare_tensorflow(f"""
      import tensorflow as tf
      loaded = tf.saved_model.load({export_dir!r})
      top = loaded.signatures[{serving_names.DEFAULT!r}](
          user_id=tf.constant(["u"]), history_item_ids=tf.constant([["1"]]),
          timestamp=tf.constant([0], tf.int64))
      print(top[{serving_names.ITEM_IDS!r}].numpy()[0, 0].decode())
      ranks = loaded.signatures[{serving_names.EVALUATE!r}](**{{
          {serving_names.EXAMPLES!r}: tf.constant(
              [{export_testing.serialized_example("3", ["1"])!r}])}})
      print(float(ranks[{serving_names.TARGET_RANK!r}].numpy()[0]))
      """, cwd=os.path.dirname(export_dir))
  assert printed == ["2", "1.0"]


# Requests of 2 and 4 rows: chunks of 1, 4 and 10 items for `retrieve_top*`,
# of 1, 2 and 5 for `evaluate`, over the 6 item indices.
@pytest.mark.parametrize("cells_per_chunk", [1, 8, 20])
def test_export_in_chunks_serves_what_one_chunk_serves(export_dir, tmp_path,
                                                      cells_per_chunk):
  chunked = tf.saved_model.load(_export(str(tmp_path), cells_per_chunk))
  whole = tf.saved_model.load(export_dir)
  queries = export_testing.query_inputs([["1", "2"], ["4", ""]])
  examples = tf.constant([export_testing.serialized_example(target, history)
                          for target, history in (("3", ["1"]), ("4", ["1"]),
                                                  ("1", ["4"]), ("2", []))])
  for name, inputs in ((serving_names.retrieve_top(100), queries),
                       (serving_names.EVALUATE,
                        {serving_names.EXAMPLES: examples})):
    expected = whole.signatures[name](**inputs)
    for output, values in chunked.signatures[name](**inputs).items():
      np.testing.assert_array_equal(values.numpy(), expected[output].numpy())
