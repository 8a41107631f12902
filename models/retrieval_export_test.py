"""Tests for the retrieval serving signatures and their ranking."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data import features
from models import export_testing
from models import retrieval_export
from models import serving_names


def test_rank_counts_higher_available_items_and_ties_against_the_target():
  scores = tf.constant([[0.9, 0.5, 0.7, 0.5, 0.1],
                        [0.2, 0.2, 0.2, 0.2, 0.2]])
  available = tf.constant([[True, True, True, True, True],
                           [True, True, True, True, False]])
  target = tf.constant([1, 0])
  ranks = retrieval_export._rank_of_target(scores, available, target)
  # Row 0: 0.9 and 0.7 are higher and the tie at 0.5 counts against it.
  # Row 1: three available competitors all tie: the target is last.
  np.testing.assert_allclose(ranks.numpy(), [3, 3])


def test_unavailable_items_do_not_compete():
  scores = tf.constant([[0.9, 0.5, 0.7]])
  available = tf.constant([[False, True, False]])
  ranks = retrieval_export._rank_of_target(scores, available, tf.constant([1]))
  np.testing.assert_allclose(ranks.numpy(), [0.0])


def test_target_outside_catalogue_gets_worst_rank():
  scores = tf.constant([[0.9, 0.5, 0.7, 0.0]])
  available = tf.constant([[True, True, True, False]])
  ranks = retrieval_export._rank_of_target(scores, available, tf.constant([3]))
  np.testing.assert_allclose(ranks.numpy(), [3.0])


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


def _exported(tmp_path, user_table: np.ndarray):
  module = retrieval_export.RetrievalServingModule(
      export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC,
      _UserTableTower(user_table),
      lambda inputs: tf.gather(_ITEM_TABLE, inputs[features.ITEM_INDEX]),
      retrieval_export.ItemCatalogue(
          item_ids=np.array(["", "1", "2", "3", "4", ""], dtype=object),
          candidate_features={features.ITEM_INDEX: np.arange(6)},
          train_counts=_TRAIN_COUNTS))
  module.save(str(tmp_path))
  return tf.saved_model.load(str(tmp_path))


def test_multi_vector_scores_are_the_max_over_vectors():
  queries = tf.constant([[[1, 0], [0, 2]], [[-1, 0], [0, -1]]], tf.float32)
  items = tf.constant([[1, 1], [3, 0], [0, -1]], tf.float32)
  np.testing.assert_allclose(
      retrieval_export.score_items(queries, items).numpy(),
      [[2, 3, 0], [-1, 0, 1]])


def test_multi_vector_export_retrieves_and_ranks_by_the_max(tmp_path):
  loaded = _exported(tmp_path, _TWO_VECTORS)
  signatures = loaded.signatures
  histories = [["1", ""], ["", ""]]

  queries = export_testing.query_inputs(histories)
  embedding = signatures["query_embedding"](**queries)
  top = signatures["retrieve_top10"](**queries)
  ranks = signatures["evaluate"](examples=tf.constant(
      [export_testing.serialized_example("3", ["1"])]))

  np.testing.assert_allclose(embedding[serving_names.EMBEDDING].numpy(),
                             np.repeat(_TWO_VECTORS, 2, axis=0))
  ids = top["item_ids"].numpy().astype(str)
  assert ids[0, :3].tolist() == ["2", "3", "4"]
  assert ids[1, :4].tolist() == ["1", "2", "3", "4"]
  np.testing.assert_allclose(top["scores"].numpy()[1, :4], [1, 0.9, 0.6, 0])
  # Item 3 after history item 1: only item 2 (0.9 > 0.6) scores higher.
  np.testing.assert_allclose(ranks[serving_names.TARGET_RANK].numpy(), [1])


def test_single_vector_export_keeps_its_embedding_shape(tmp_path):
  loaded = _exported(tmp_path, _TWO_VECTORS[:, 0])
  no_history = export_testing.query_inputs([[""]])
  embedding = loaded.signatures["query_embedding"](**no_history)
  np.testing.assert_allclose(embedding[serving_names.EMBEDDING].numpy(), [[1, 0]])
  top = loaded.signatures["retrieve_top10"](**no_history)
  assert top["item_ids"].numpy().astype(str)[0, :4].tolist() == [
      "1", "3", "2", "4"]
