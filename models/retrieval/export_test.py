"""Tests for the retrieval serving signatures and their ranking."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import catalogue_scoring
from models import export_testing
from models.retrieval import export as retrieval_export
from models import serving_names


def _ranks(scores, servable, seen_pairs, target, items_per_chunk=2):
  """`chunked_target_ranks` of one scorer given as a `[batch, items]` table."""
  scores = tf.constant(scores, tf.float32)
  return catalogue_scoring.chunked_target_ranks(
      [lambda start, size: scores[:, start:start + size]],
      tf.constant(servable), tf.constant(seen_pairs, tf.int64, [len(seen_pairs), 2]),
      tf.constant(target, tf.int64), items_per_chunk)[0].numpy()


def test_rank_counts_higher_available_items_and_ties_against_the_target():
  scores = [[0.9, 0.5, 0.7, 0.5, 0.1],
            [0.2, 0.2, 0.2, 0.2, 0.2]]
  # Row 1 has seen item 4 and its target, item 0: the target still competes.
  ranks = _ranks(scores, [True] * 5, [[1, 4], [1, 0]], [1, 0])
  # Row 0: 0.9 and 0.7 are higher and the tie at 0.5 counts against it.
  # Row 1: three available competitors all tie: the target is last.
  np.testing.assert_array_equal(ranks, [3, 3])


def test_unavailable_items_do_not_compete():
  ranks = _ranks([[0.9, 0.5, 0.7]], [False, True, False], [], [1])
  np.testing.assert_array_equal(ranks, [0])


def test_target_outside_catalogue_gets_worst_rank():
  ranks = _ranks([[0.9, 0.5, 0.7, 0.0]], [True, True, True, False], [], [3])
  np.testing.assert_array_equal(ranks, [3])


def _full_catalogue_ranks(scores, servable, seen_pairs, target):
  """The protocol in numpy over the whole `[batch, items]` score table."""
  ranks = []
  for row, (row_scores, row_target) in enumerate(zip(scores, target)):
    competitors = servable.copy()
    competitors[[item for seen_row, item in seen_pairs if seen_row == row]] = False
    competitors[row_target] = False
    ranks.append(np.sum(competitors & (row_scores >= row_scores[row_target]))
                 if servable[row_target] else np.sum(competitors))
  return np.array(ranks, np.float32)


# 11 item indices: a catalogue that chunks of 3 and 7 do not divide.
_NUM_ITEMS = 11
_CHUNK_SIZES = (1, 3, 7, 11, 40)


def _queries_and_items(vectors_per_user: int | None, integer: bool):
  """Six users' queries (`[6, dim]`, or `[6, K, dim]`) and the item table;
  small integers make many ties, normal draws make rounding matter."""
  rng = np.random.default_rng(5)
  draw = ((lambda shape: rng.integers(-2, 3, shape)) if integer
          else rng.standard_normal)
  query_shape = (6, 3) if vectors_per_user is None else (6, vectors_per_user, 3)
  return (tf.constant(draw(query_shape), tf.float32),
          tf.constant(draw((_NUM_ITEMS, 3)), tf.float32))


# Item 0 is padding and item 9 never trained: neither is servable.
_SERVABLE = np.array([False] + [True] * 8 + [False, True])
# (user, item) pairs seen: user 1 has seen its target, user 3 most items.
_SEEN = [[0, 2], [1, 4], [1, 5], [3, 1], [3, 2], [3, 3], [3, 6], [3, 8],
         [4, 0], [5, 10]]
# User 2's target, 9, is not servable; user 5's is the last item.
_TARGETS = [3, 4, 9, 7, 1, 10]


@pytest.mark.parametrize("vectors_per_user", [None, 3])
@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("items_per_chunk", _CHUNK_SIZES)
def test_chunked_ranks_are_the_whole_catalogue_ranks(vectors_per_user, integer,
                                                    items_per_chunk):
  queries, items = _queries_and_items(vectors_per_user, integer)
  popularity = tf.constant([[0, 3, 1, 3, 2, 1, 3, 3, 2, 0, 1]], tf.float32)
  scorers = [
      lambda start, size: catalogue_scoring.score_items(
          queries, items[start:start + size]),
      lambda start, size: tf.broadcast_to(popularity[:, start:start + size],
                                          tf.stack([6, size]))]
  ranks = catalogue_scoring.chunked_target_ranks(
      scorers, tf.constant(_SERVABLE), tf.constant(_SEEN, tf.int64),
      tf.constant(_TARGETS, tf.int64), items_per_chunk)
  whole_catalogue = [catalogue_scoring.score_items(queries, items).numpy(),
                     np.repeat(popularity.numpy(), 6, axis=0)]
  for chunked, scores in zip(ranks, whole_catalogue):
    np.testing.assert_array_equal(
        chunked.numpy(),
        _full_catalogue_ranks(scores, _SERVABLE, _SEEN, _TARGETS))
  # User 2 has seen nothing: its unservable target ranks behind all 9
  # servable items.
  assert ranks[0].numpy()[2] == 9


@pytest.mark.parametrize("vectors_per_user", [None, 3])
@pytest.mark.parametrize("k", [4, 20])
@pytest.mark.parametrize("items_per_chunk", _CHUNK_SIZES)
def test_chunked_top_k_is_the_whole_catalogue_top_k(vectors_per_user, k,
                                                    items_per_chunk):
  # Integer scores: ties must still come out by item index.
  queries, items = _queries_and_items(vectors_per_user, integer=True)
  scores, indices = catalogue_scoring.chunked_top_k(
      lambda start, size: catalogue_scoring.score_items(
          queries, items[start:start + size]),
      tf.constant(_SERVABLE), tf.constant(_SEEN, tf.int64), 6, k,
      items_per_chunk)
  available = np.repeat(_SERVABLE[np.newaxis, :], 6, axis=0)
  available[tuple(np.transpose(_SEEN))] = False
  expected = tf.math.top_k(tf.where(
      available, catalogue_scoring.score_items(queries, items), -1e9),
                           k=min(k, _NUM_ITEMS))
  np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
  np.testing.assert_array_equal(scores.numpy(), expected.values.numpy())


# Items 1..4 in two dimensions; index 0 is padding and 5 is OOV.
_ITEM_TABLE = np.array([[0, 0], [1, 0], [0, 0.9], [0.6, 0.6], [-1, 0], [0, 0]],
                       np.float32)
# One user with two interests. Max over them ranks items 1, 2, 3, 4; their
# mean would put item 3 first.
_TWO_VECTORS = np.array([[[1, 0], [0, 1]]], np.float32)
_TRAIN_COUNTS = np.array([0, 3, 1, 2, 5, 0], np.float64)


class _UserTableTower(tf.Module):
  """Looks the user's query vectors up: `[users, dim]` or `[users, K, dim]`."""

  def __init__(self, table: np.ndarray):
    super().__init__()
    self.table = tf.Variable(table, trainable=False)

  def __call__(self, inputs):
    return tf.gather(self.table, inputs[features.USER_INDEX])


def _exported(tmp_path, user_table: np.ndarray,
              cells_per_chunk: int = catalogue_scoring.CELLS_PER_CHUNK):
  module = retrieval_export.RetrievalServingModule(
      export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC,
      _UserTableTower(user_table),
      lambda inputs: tf.gather(_ITEM_TABLE, inputs[features.ITEM_INDEX]),
      catalogue_lib.ItemCatalogue(
          item_ids=np.array(["", "1", "2", "3", "4", ""], dtype=object),
          candidate_features={features.ITEM_INDEX: np.arange(6)},
          train_counts=_TRAIN_COUNTS),
      cells_per_chunk)
  module.save(str(tmp_path))
  return tf.saved_model.load(str(tmp_path))


def test_multi_vector_scores_are_the_max_over_vectors():
  queries = tf.constant([[[1, 0], [0, 2]], [[-1, 0], [0, -1]]], tf.float32)
  items = tf.constant([[1, 1], [3, 0], [0, -1]], tf.float32)
  np.testing.assert_allclose(
      catalogue_scoring.score_items(queries, items).numpy(),
      [[2, 3, 0], [-1, 0, 1]])


def test_multi_vector_export_retrieves_and_ranks_by_the_max(tmp_path):
  loaded = _exported(tmp_path, _TWO_VECTORS)
  signatures = loaded.signatures
  histories = [["1", ""], ["", ""]]

  queries = export_testing.query_inputs(histories)
  embedding = signatures[serving_names.QUERY_EMBEDDING](**queries)
  top = signatures[serving_names.retrieve_top(10)](**queries)
  ranks = signatures[serving_names.EVALUATE](**{
      serving_names.EXAMPLES: tf.constant(
          [export_testing.serialized_example("3", ["1"])])})

  np.testing.assert_allclose(embedding[serving_names.EMBEDDING].numpy(),
                             np.repeat(_TWO_VECTORS, 2, axis=0))
  ids = top[serving_names.ITEM_IDS].numpy().astype(str)
  assert ids[0, :3].tolist() == ["2", "3", "4"]
  assert ids[1, :4].tolist() == ["1", "2", "3", "4"]
  np.testing.assert_allclose(top[serving_names.SCORES].numpy()[1, :4],
                             [1, 0.9, 0.6, 0])
  # Item 3 after history item 1: only item 2 (0.9 > 0.6) scores higher.
  np.testing.assert_allclose(ranks[serving_names.TARGET_RANK].numpy(), [1])


def test_single_vector_export_keeps_its_embedding_shape(tmp_path):
  loaded = _exported(tmp_path, _TWO_VECTORS[:, 0])
  no_history = export_testing.query_inputs([[""]])
  embedding = loaded.signatures[serving_names.QUERY_EMBEDDING](**no_history)
  np.testing.assert_allclose(embedding[serving_names.EMBEDDING].numpy(), [[1, 0]])
  top = loaded.signatures[serving_names.retrieve_top(10)](**no_history)
  assert top[serving_names.ITEM_IDS].numpy().astype(str)[0, :4].tolist() == [
      "1", "3", "2", "4"]


@pytest.mark.parametrize("cells_per_chunk", [1, 5, 7])
def test_export_in_chunks_serves_what_one_chunk_serves(tmp_path,
                                                      cells_per_chunk):
  # Two vectors per user: chunks of 1, 2 and 3 of the 6 item indices for
  # one user, and of 1 for two.
  chunked = _exported(tmp_path / "chunked", _TWO_VECTORS, cells_per_chunk)
  whole = _exported(tmp_path / "whole", _TWO_VECTORS)
  queries = export_testing.query_inputs([["1", ""], ["", ""]])
  examples = tf.constant([export_testing.serialized_example("3", ["1"]),
                          export_testing.serialized_example("4", [], ["2"]),
                          export_testing.serialized_example("2", ["2"])])
  for name, inputs in ((serving_names.retrieve_top(100), queries),
                       (serving_names.EVALUATE,
                        {serving_names.EXAMPLES: examples})):
    expected = whole.signatures[name](**inputs)
    for output, values in chunked.signatures[name](**inputs).items():
      np.testing.assert_array_equal(values.numpy(), expected[output].numpy())
