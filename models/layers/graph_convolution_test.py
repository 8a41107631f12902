"""Tests for LightGCN's propagation, with values worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from models.layers import graph_convolution

# The 3-node graph: user 0 bought items 0 and 1. Its degrees are 2 (user)
# and 1, 1 (items), so the symmetric weight of each edge is 1 / sqrt(2 * 1);
# a mean over the user's items would give 1/2, a sum 1.
USERS, ITEMS = np.array([0, 0]), np.array([0, 1])
USER_EMBEDDINGS = np.array([[1.0, 2.0]], np.float32)
ITEM_EMBEDDINGS = np.array([[4.0, 0.0], [0.0, 6.0]], np.float32)


def test_one_step_on_a_three_node_graph_uses_the_symmetric_normalisation():
  graph = graph_convolution.bipartite_graph(USERS, ITEMS, 1, 2)
  user_layers, item_layers = graph_convolution.propagate(
      graph.adjacency, USER_EMBEDDINGS, ITEM_EMBEDDINGS, num_layers=1)
  weight = 1 / np.sqrt(2)
  np.testing.assert_allclose(user_layers.numpy(), [
      [[1.0, 2.0]],
      [[4.0 * weight, 6.0 * weight]],
  ], rtol=1e-6)
  np.testing.assert_allclose(item_layers.numpy(), [
      [[4.0, 0.0], [0.0, 6.0]],
      [[1.0 * weight, 2.0 * weight], [1.0 * weight, 2.0 * weight]],
  ], rtol=1e-6)


def test_two_steps_return_each_node_to_itself_scaled_by_its_walks():
  graph = graph_convolution.bipartite_graph(USERS, ITEMS, 1, 2)
  user_layers, item_layers = graph_convolution.propagate(
      graph.adjacency, USER_EMBEDDINGS, ITEM_EMBEDDINGS, num_layers=2)
  # user -> item -> user: two walks of weight 1/2 each.
  np.testing.assert_allclose(user_layers.numpy()[2], [[1.0, 2.0]], rtol=1e-6)
  # item 0 -> user -> item 0 or item 1, weight 1/2 each.
  np.testing.assert_allclose(item_layers.numpy()[2], [[2.0, 3.0], [2.0, 3.0]],
                             rtol=1e-6)


def test_repeated_interactions_are_one_edge_and_isolated_nodes_stay_zero():
  graph = graph_convolution.bipartite_graph(np.array([0, 0, 0, 1]),
                                            np.array([1, 1, 2, 2]), 3, 4)
  np.testing.assert_array_equal(graph.user_degrees, [2, 1, 0])
  np.testing.assert_array_equal(graph.item_degrees, [0, 1, 2, 0])
  dense = tf.sparse.to_dense(graph.adjacency).numpy()
  np.testing.assert_allclose(dense, [
      [0, 1 / np.sqrt(2), 1 / np.sqrt(4), 0],
      [0, 0, 1 / np.sqrt(2), 0],
      [0, 0, 0, 0],
  ], rtol=1e-6)


def test_indices_outside_the_space_are_refused():
  with pytest.raises(ValueError, match=r"item indices must lie in \[0, 2\)"):
    graph_convolution.bipartite_graph(np.array([0]), np.array([2]), 1, 2)


def test_distinct_first_occurrences_drops_padding_and_repeats():
  mask = graph_convolution.distinct_first_occurrences(
      tf.constant([[3, 5, 3, 0], [0, 0, 0, 0], [2, 2, 2, 7]]))
  np.testing.assert_array_equal(mask.numpy(), [
      [True, True, False, False],
      [False, False, False, False],
      [True, False, False, True],
  ])


def test_a_history_of_the_graph_neighbours_rebuilds_the_propagated_user():
  # Two users: user 1 bought items 1 and 2, user 0 items 0 and 1.
  graph = graph_convolution.bipartite_graph(np.array([0, 0, 1, 1]),
                                            np.array([0, 1, 1, 2]), 2, 3)
  rng = np.random.default_rng(0)
  user_layers, item_layers = graph_convolution.propagate(
      graph.adjacency, rng.normal(size=(2, 4)).astype(np.float32),
      rng.normal(size=(3, 4)).astype(np.float32), num_layers=3)
  # Histories hold padding (0 is also item 0 here, so pad with item 0 only
  # where it is a neighbour) and a repeat; neither changes the neighbourhood.
  history = tf.constant([[1, 0, 1], [2, 1, 2]])
  from_history = graph_convolution.user_layers_from_history(
      history, item_layers, tf.constant(graph.item_degrees), padding_index=-1)
  np.testing.assert_allclose(from_history.numpy(), user_layers.numpy()[1:],
                             rtol=1e-5, atol=1e-6)


def test_items_outside_the_graph_are_not_neighbours():
  graph = graph_convolution.bipartite_graph(np.array([0]), np.array([1]), 1, 3)
  item_layers = tf.constant([[[9.0], [2.0], [7.0]], [[0.0], [0.0], [0.0]]])
  from_history = graph_convolution.user_layers_from_history(
      tf.constant([[1, 2, 0]]), item_layers, tf.constant(graph.item_degrees))
  # Item 2 has no edge: only item 1 counts, with |N(u)| = 1 and |N(1)| = 1.
  np.testing.assert_allclose(from_history.numpy(), [[[2.0]]])
