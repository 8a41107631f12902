"""Tests for SEMINAR's pair encoder."""

import numpy as np
import tensorflow as tf

from models.seminar import encoder as seminar_encoder
from models.seminar.model_test import ITEM_TOKENS
from models.seminar.model_test import NUM_ITEMS
from models.seminar.model_test import NUM_TOKENS


def _encoder(**options):
  tf.keras.utils.set_random_seed(0)
  return seminar_encoder.PairEncoder(ITEM_TOKENS, NUM_TOKENS, 8, **options)


def test_query_embedding_is_the_mean_of_keyword_embeddings():
  encoder = _encoder()
  query = encoder.queries(tf.constant([[2, 5, 0]])).numpy()
  table = encoder.token_embedding.embeddings.numpy()
  np.testing.assert_allclose(query[0], (table[2] + table[5]) / 2, rtol=1e-5)


def test_item_embedding_gates_id_text_and_image_views():
  images = np.random.default_rng(0).normal(size=(NUM_ITEMS, 4)).astype(
      np.float32)
  encoder = _encoder(image_vectors=images)
  assert encoder.num_views == 3
  views = encoder.views(tf.constant([1, 2]))
  mixed = encoder.items(tf.constant([1, 2])).numpy()
  gates = tf.nn.softmax(encoder.view_gate(tf.concat(views, -1))).numpy()
  expected = sum(gates[:, v:v + 1] * views[v].numpy() for v in range(3))
  np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-6)
  id_only = _encoder(use_text=False)
  np.testing.assert_allclose(
      id_only.items(tf.constant([3])).numpy(),
      id_only.id_embedding(tf.constant([3])).numpy())


def test_pairs_gate_queries_into_items_only_when_used():
  items = tf.constant([[1, 2]])
  keywords = tf.constant([[[3], [4]]])
  encoder = _encoder()
  item_vectors = encoder.items(items)
  pairs = encoder.pairs(item_vectors, keywords)
  gate = encoder.pair_gate(tf.concat(
      [item_vectors, encoder.queries(keywords)], -1))
  np.testing.assert_allclose(
      pairs, gate * item_vectors + (1 - gate) * encoder.queries(keywords),
      rtol=1e-6)
  without_queries = _encoder(use_queries=False)
  item_vectors = without_queries.items(items)
  np.testing.assert_array_equal(without_queries.pairs(item_vectors, keywords),
                                item_vectors)
