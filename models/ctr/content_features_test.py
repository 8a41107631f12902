"""Tests for item content vectors."""

from __future__ import annotations

import numpy as np

from models.ctr import content_features


def test_token_vectors_are_tf_idf_rows():
  # 4 items (0 = padding), 3 tokens; token 1 is in every real item.
  tokens = np.array([[0, 0], [1, 2], [1, 0], [1, 3]])
  vectors = content_features.token_vectors(tokens, num_tokens=4, token_dim=8)
  idf_common = np.log(5 / 4) + 1
  idf_rare = np.log(5 / 2) + 1
  expected_item_1 = np.array([idf_common, idf_rare, 0]) / np.hypot(idf_common, idf_rare)
  np.testing.assert_allclose(vectors[1], expected_item_1, rtol=1e-5)
  np.testing.assert_allclose(vectors[2], [1, 0, 0])
  np.testing.assert_array_equal(vectors[0], 0)


def test_token_vectors_are_reduced_when_the_vocabulary_is_large():
  tokens = np.random.default_rng(0).integers(0, 30, size=(20, 4))
  vectors = content_features.token_vectors(tokens, num_tokens=30, token_dim=5)
  assert vectors.shape == (20, 5)


def test_relation_vectors_group_related_items():
  # Items 1-2-3 are related, 4-5 are related, 6 has no relation.
  pairs = np.array([[1, 2], [2, 3], [1, 3], [4, 5]])
  vectors = content_features.relation_vectors(7, pairs, dim=3)
  similarity = vectors @ vectors.T
  assert similarity[1, 2] > 0.9 and similarity[4, 5] > 0.9
  assert abs(similarity[1, 4]) < 0.1
  np.testing.assert_array_equal(vectors[6], 0)


def test_content_vectors_concatenate_normalised_blocks():
  tokens = np.array([[0], [1], [2], [1]])
  relations = {"complement": np.array([[1, 2]]), "substitute": np.array([[2, 3]])}
  external = np.array([[0, 0], [3, 4], [0, 0], [1, 0]], np.float32)
  vectors = content_features.content_vectors(tokens, 3, relations, external,
                                             relation_dim=2)
  assert vectors.shape == (4, 2 + 2 + 2 + 2)
  np.testing.assert_array_equal(vectors[0], 0)
  np.testing.assert_allclose(vectors[1, -2:], [0.6, 0.8])


def test_a_relation_without_pairs_adds_no_block():
  tokens = np.array([[0, 0], [1, 2], [1, 0], [2, 0]])
  without = content_features.content_vectors(tokens, num_tokens=3)
  empty = content_features.content_vectors(
      tokens, num_tokens=3,
      item_relations={"complement": np.zeros((0, 2), np.int64)})
  np.testing.assert_array_equal(empty, without)
