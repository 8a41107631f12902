"""Tests for product quantisation."""

import numpy as np
import pytest
import tensorflow as tf

from models.layers import product_quantization as pq


def _vectors(n=400, width=8, seed=0):
  return np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32)


def test_round_trip_error_decreases_with_more_centroids():
  vectors = _vectors()
  errors = []
  for num_centroids in (2, 8, 32, 128):
    codebooks = pq.train_codebooks(vectors, num_subspaces=2,
                                   num_centroids=num_centroids)
    decoded = pq.decode(pq.encode(vectors, codebooks), codebooks).numpy()
    errors.append(float(np.mean(np.sum((vectors - decoded)**2, axis=1))))
  assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
  assert errors[-1] < 0.25 * errors[0]


def test_centroids_encode_to_themselves():
  codebooks = np.array([[[0.0, 0.0], [1.0, 1.0], [5.0, 0.0]],
                        [[2.0, 2.0], [-1.0, 0.0], [0.0, 3.0]]], np.float32)
  vectors = np.array([[1.0, 1.0, 0.0, 3.0], [5.0, 0.0, 2.0, 2.0],
                      [0.9, 1.2, -0.8, 0.1]], np.float32)
  codes = pq.encode(vectors, codebooks).numpy()
  np.testing.assert_array_equal(codes, [[1, 2], [2, 0], [1, 1]])
  np.testing.assert_allclose(pq.decode(codes, codebooks).numpy(),
                             [[1, 1, 0, 3], [5, 0, 2, 2], [1, 1, -1, 0]])


def test_lookup_score_equals_dot_product_with_decoded_vectors():
  vectors = _vectors(width=12)
  codebooks = pq.train_codebooks(vectors, num_subspaces=3, num_centroids=16)
  codes = tf.reshape(pq.encode(vectors[:30], codebooks), [2, 15, 3])
  queries = tf.constant(_vectors(n=2, width=12, seed=1))
  tables = pq.lookup_tables(queries, codebooks)
  assert tables.shape == (2, 3, 16)
  exact = tf.einsum("bd,bld->bl", queries, pq.decode(codes, codebooks))
  np.testing.assert_allclose(pq.lookup_scores(tables, codes).numpy(),
                             exact.numpy(), rtol=1e-5, atol=1e-5)


def test_known_lookup_score():
  codebooks = np.array([[[1.0], [2.0]], [[10.0], [20.0]]], np.float32)
  tables = pq.lookup_tables(tf.constant([[1.0, 0.5], [0.0, 1.0]]), codebooks)
  np.testing.assert_allclose(tables.numpy(), [[[1.0, 2.0], [5.0, 10.0]],
                                              [[0.0, 0.0], [10.0, 20.0]]])
  # Each query reads its own table.
  scores = pq.lookup_scores(tables, tf.constant([[[0, 0], [1, 1], [1, 0]],
                                                 [[0, 1], [1, 0], [0, 0]]]))
  np.testing.assert_allclose(scores.numpy(), [[6.0, 12.0, 7.0],
                                              [20.0, 10.0, 10.0]])


def test_xla_compiled_lookup_matches_the_plain_ops():
  codebooks = pq.train_codebooks(_vectors(width=12), num_subspaces=3,
                                 num_centroids=16)
  codes = tf.cast(tf.reshape(pq.encode(_vectors(n=40, width=12, seed=2),
                                       codebooks), [2, 20, 3]), tf.uint8)
  tables = pq.lookup_tables(tf.constant(_vectors(n=2, width=12, seed=1)),
                            codebooks)
  np.testing.assert_allclose(pq.xla_lookup_scores(tables, codes).numpy(),
                             pq.lookup_scores(tables, codes).numpy(),
                             rtol=1e-6, atol=1e-6)


def test_bad_shapes_are_rejected():
  with pytest.raises(ValueError, match="divisible"):
    pq.train_codebooks(_vectors(width=6), num_subspaces=4, num_centroids=2)
  with pytest.raises(ValueError, match="cannot train"):
    pq.train_codebooks(_vectors(n=3), num_subspaces=2, num_centroids=4)
