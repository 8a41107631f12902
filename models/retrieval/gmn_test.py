"""Tests for the GMN retrieval model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import export_testing
from models import trainer_testing
from models.retrieval import gmn
from models.retrieval import two_tower

VOCAB = two_tower.VocabularySizes(users=5, items=9, title_tokens=1, categories=1)
VARIANTS = {**gmn.ABLATIONS, "e_full_gmn_sinkhorn": dict(matching="sinkhorn"),
            "e_full_gmn_without_propagation": dict(propagation_layers=0)}
# The train graph, users x nodes (videos 1-4, items 5-8), user ids as the
# pipeline's need not be: user 10 watched videos 1, 2 and bought item 5; 11
# watched 2, 3 and bought 6; 12 watched 4 and bought 7, 8; 13 watched 1 and
# bought 8. Node 0, padding, has no edge.
EDGES = (np.array([10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13]),
         np.array([1, 2, 5, 2, 3, 6, 4, 7, 8, 1, 8]))


def _batch():
  # Videos are indices 1-4, items 5-8; the last user has no item side.
  return {
      features.ITEM_INDEX: tf.constant([1, 2, 3, 4], tf.int64),
      features.VIDEO_NEIGHBOUR_INDICES: tf.constant(
          [[2, 3, 0], [1, 0, 0], [4, 1, 2], [3, 0, 0]], tf.int64),
      features.ITEM_NEIGHBOUR_INDICES: tf.constant(
          [[5, 6], [7, 0], [8, 5], [0, 0]], tf.int64),
  }


def _model(edges=EDGES, **overrides):
  tf.keras.utils.set_random_seed(1)
  config = gmn.GmnConfig(embedding_dim=8, tower_units=(16, 8), num_preferences=2,
                         batch_size=4, **overrides)
  return gmn.build_gmn(
      VOCAB, {features.ITEM_INDEX: np.arange(VOCAB.items, dtype=np.int64)},
      np.full(VOCAB.items, 1.0 / VOCAB.items), config, edges=edges)


def _node_layers(table: np.ndarray, user_table: np.ndarray, edges,
                 num_layers: int) -> np.ndarray:
  """`[K + 1, nodes, dim]` by dense light graph convolution, worked apart
  from `graph_convolution`."""
  users = np.unique(edges[0], return_inverse=True)[1]
  interactions = np.zeros((len(user_table), len(table)))
  interactions[users, edges[1]] = 1.0
  degrees_u, degrees_n = interactions.sum(1), interactions.sum(0)
  adjacency = interactions / np.sqrt(
      np.outer(np.maximum(degrees_u, 1), np.maximum(degrees_n, 1)))
  user_layer, layers = user_table, [table]
  for _ in range(num_layers):
    user_layer, node_layer = adjacency @ layers[-1], adjacency.T @ user_layer
    layers.append(node_layer)
  return np.stack(layers)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_towers_output_unit_vectors(variant):
  model = _model(**VARIANTS[variant])
  for tower in (model.query_tower, model.candidate_tower):
    embeddings = tower(_batch()).numpy()
    assert embeddings.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_neighbours_and_candidates_share_one_embedding():
  model = _model()
  assert model.query_tower.node_embedding is model.candidate_tower.node_embedding


@pytest.mark.parametrize("variant,reads_items", [
    ("a_two_tower_videos_only", False), ("b_pooled_both_sides", True),
    ("e_full_gmn", True)])
def test_item_neighbours_matter_only_with_the_item_side(variant, reads_items):
  model = _model(**VARIANTS[variant])
  batch = _batch()
  changed = dict(batch)
  changed[features.ITEM_NEIGHBOUR_INDICES] = tf.constant(
      [[8, 7], [6, 0], [5, 6], [0, 0]], tf.int64)
  difference = np.abs(model.query_tower(batch).numpy() -
                      model.query_tower(changed).numpy())[:3].max()
  assert (difference > 1e-4) == reads_items


def test_matching_without_the_item_side_is_rejected():
  with pytest.raises(ValueError, match="item side"):
    gmn.GmnConfig(use_item_side=False)


@pytest.mark.parametrize("propagation_layers", [0, 2])
def test_training_reduces_the_in_batch_softmax_loss(propagation_layers):
  before, after = trainer_testing.losses_before_and_after(
      _model(matching="sinkhorn", propagation_layers=propagation_layers),
      _batch())
  assert np.isfinite(before) and after < 0.5 * before


def test_a_candidate_video_is_its_mean_over_propagated_layers_through_the_mlp():
  model = _model(propagation_layers=2)
  graph = model.embeddings
  layers = _node_layers(graph.item_table.numpy(), graph.user_table.numpy(),
                        EDGES, num_layers=2)
  videos = np.array([1, 4, 0])
  expected = tf.math.l2_normalize(model.candidate_tower.mlp(
      layers.mean(axis=0)[videos].astype(np.float32)), axis=-1)
  served = model.candidate_tower({features.ITEM_INDEX: tf.constant(videos)})
  np.testing.assert_allclose(served.numpy(), expected.numpy(), rtol=1e-5,
                             atol=1e-6)
  # Node 0 has no edge: its layers 1 and 2 are zero.
  np.testing.assert_allclose(layers[1:, 0], 0.0)


@pytest.mark.parametrize("propagation_layers,changes", [
    (0, False), (1, False), (2, True)])
def test_an_edge_two_hops_away_changes_the_query_only_at_two_hops(
    propagation_layers, changes):
  # User 13 swaps item 8 for item 7; the query's neighbours are video 1
  # (user 13 watched it) and item 5: video 1 -> user 13 -> item 7 is 2 hops.
  # The degrees of user 13 and video 1 stay, so hop 1 reads the same weights.
  swapped = (EDGES[0], np.where((EDGES[0] == 13) & (EDGES[1] == 8), 7,
                                EDGES[1]))
  request = {features.VIDEO_NEIGHBOUR_INDICES: tf.constant([[1]], tf.int64),
             features.ITEM_NEIGHBOUR_INDICES: tf.constant([[5]], tf.int64)}
  queries = [_model(edges, propagation_layers=propagation_layers).query_tower(
      request).numpy() for edges in (EDGES, swapped)]
  assert (np.abs(queries[0] - queries[1]).max() > 1e-5) == changes


def test_without_propagation_the_model_is_one_id_embedding_and_no_graph():
  videos = {features.ITEM_INDEX: tf.constant([1, 2])}

  def outputs(model):
    # Called in one order: a tower's first call draws its weights.
    return model.candidate_tower(videos).numpy(), model.query_tower(
        _batch()).numpy()

  model = _model(edges=None, propagation_layers=0)
  assert type(model) is two_tower.RetrievalModel
  served = outputs(model)
  table = model.query_tower.node_embedding.embeddings.numpy()
  assert table.shape == (VOCAB.items, 8)
  expected = tf.math.l2_normalize(model.candidate_tower.mlp(table[[1, 2]]),
                                  axis=-1)
  np.testing.assert_allclose(served[0], expected.numpy(), rtol=1e-6)
  # The edges are not read: the same seed gives the same model with them.
  for with_edges, without in zip(outputs(_model(propagation_layers=0)),
                                 served):
    np.testing.assert_array_equal(with_edges, without)


def test_propagation_needs_the_edges():
  with pytest.raises(ValueError, match="edges=.*propagation_layers=0"):
    _model(edges=None)


def test_the_serving_towers_keep_the_model_they_were_frozen_with():
  model = _model(propagation_layers=2, item_bias=True)
  # A request holds neighbour lists and candidates only, no user: a user
  # outside the train graph is served alike.
  request = _batch()
  frozen = model.serving_towers()
  live = (model.query_tower, model.candidate_tower)
  at_freeze = [tower(request).numpy() for tower in frozen]
  for tower, vectors in zip(live, at_freeze):
    np.testing.assert_allclose(tower(request).numpy(), vectors, rtol=1e-5,
                               atol=1e-6)
  trainer_testing.losses_before_and_after(model, request, steps=2)
  for frozen_tower, live_tower, vectors in zip(frozen, live, at_freeze):
    np.testing.assert_array_equal(frozen_tower(request).numpy(), vectors)
    assert np.abs(live_tower(request).numpy() - vectors).max() > 1e-4


def test_the_frozen_query_tower_serves_in_bare_tensorflow(tmp_path):
  query, _ = _model().serving_towers()
  module = tf.Module()
  module.query = query
  neighbours = tf.TensorSpec([None, None], tf.int64)
  module.serve = tf.function(
      lambda videos, items: {"query": query({
          features.VIDEO_NEIGHBOUR_INDICES: videos,
          features.ITEM_NEIGHBOUR_INDICES: items})},
      input_signature=[neighbours, neighbours])
  tf.saved_model.save(module, str(tmp_path / "gmn"),
                      signatures={"query": module.serve})
  request = _batch()
  videos = request[features.VIDEO_NEIGHBOUR_INDICES].numpy().tolist()
  items = request[features.ITEM_NEIGHBOUR_INDICES].numpy().tolist()
  printed = export_testing.run_in_bare_tensorflow(f"""
      import tensorflow as tf
      loaded = tf.saved_model.load("gmn")
      # The node table is a variable: a constant would bound the GraphDef.
      stored = tf.train.list_variables("gmn/variables/variables")
      assert [{VOCAB.items}, 8] in [shape for _, shape in stored], stored
      query = loaded.signatures["query"](
          videos=tf.constant({videos}, tf.int64),
          items=tf.constant({items}, tf.int64))["query"]
      print(query.numpy().tolist())
      """, cwd=str(tmp_path))
  np.testing.assert_allclose(eval(printed[-1]), query(request).numpy(),
                             rtol=1e-5, atol=1e-6)


def test_most_recent_keeps_the_last_real_neighbours():
  indices = tf.constant([[5, 6, 7, 8, 0, 0], [9, 0, 0, 0, 0, 0], [0] * 6],
                        tf.int64)
  np.testing.assert_array_equal(gmn.most_recent(indices, 3).numpy(),
                                [[6, 7, 8], [0, 0, 9], [0, 0, 0]])
