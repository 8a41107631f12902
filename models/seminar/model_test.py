"""Tests for SEMINAR's retriever and hyperparameters; fixtures of the
SEMINAR tests."""

import numpy as np
import pytest
import tensorflow as tf

from data import derived_queries
from models.layers import product_quantization
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu

NUM_ITEMS = 12
NUM_TOKENS = 9
# Item i has tokens (i % 8) + 1 and ((i + 3) % 8) + 1; item 0 is padding.
ITEM_TOKENS = np.zeros((NUM_ITEMS, 3), np.int64)
ITEM_TOKENS[1:, 0] = np.arange(1, NUM_ITEMS) % 8 + 1
ITEM_TOKENS[1:, 1] = (np.arange(1, NUM_ITEMS) + 3) % 8 + 1


def small_config(**overrides) -> seminar.SeminarConfig:
  values = dict(embedding_dim=8, num_heads=2, top_k=3, dropout=0.0,
                num_negatives=5, pq_subspaces=2, pq_centroids=4)
  values.update(overrides)
  return seminar.SeminarConfig(**values)


def queries_of(items: np.ndarray, num_keywords: int) -> np.ndarray:
  return derived_queries.derive_queries(items, ITEM_TOKENS, num_keywords)


def small_batch() -> dict[str, tf.Tensor]:
  items = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0], [9, 10, 0, 0, 0]],
                   np.int64)
  return {"items": tf.constant(items),
          "keywords": tf.constant(queries_of(items, 1))}


def small_models(seed=0, image_vectors=None, **overrides):
  """The PSU and the retriever of `small_config(**overrides)`."""
  tf.keras.utils.set_random_seed(seed)
  return seminar_psu.build_seminar(ITEM_TOKENS, NUM_TOKENS,
                                   small_config(**overrides), image_vectors)


def test_retriever_restores_the_psu_and_learns():
  pretrainer, retriever = small_models()
  retriever.restore_pretrained(pretrainer)
  for name in ("encoder", "attention"):
    for a, b in zip(getattr(retriever, name).get_weights(),
                    getattr(pretrainer, name).get_weights()):
      np.testing.assert_array_equal(a, b)
  batch = small_batch()
  candidates = tf.constant([2, 4, 6, 8])
  before = retriever.score(batch["items"][:, :-1], batch["keywords"][:, :-1],
                           candidates).numpy()
  assert before.shape == (3, 4)
  # Eager: tracing the train step costs more than these few steps.
  retriever.compile(optimizer=tf.keras.optimizers.Adam(0.05),
                    run_eagerly=True)
  history = retriever.fit(tf.data.Dataset.from_tensors(batch).repeat(10),
                          epochs=2, verbose=0).history["loss"]
  assert history[1] < history[0]


def test_padding_is_ignored_and_pq_matches_exact_when_all_items_fit():
  _, retriever = small_models(top_k=8)
  items = tf.constant([[1, 2, 3, 0], [4, 0, 0, 0]], tf.int64)
  keywords = tf.constant(queries_of(items.numpy(), 1))
  per_user = tf.constant([[5, 6], [7, 8]], tf.int64)
  exact = retriever.score(items, keywords, per_user).numpy()
  padding = tf.broadcast_to((items == 0)[..., tf.newaxis], keywords.shape)
  other_keywords = tf.where(padding, tf.constant(5, tf.int64), keywords)
  np.testing.assert_allclose(
      retriever.score(items, other_keywords, per_user).numpy(), exact,
      rtol=1e-6)
  retriever.quantize_item_keys()
  assert retriever.item_key_codes.shape == (NUM_ITEMS, 2)
  # With top_k above the history length, selection keeps every item, so
  # PQ and exact selection must give the same scores.
  np.testing.assert_allclose(
      retriever.score(items, keywords, per_user, seminar.ScoringMode.PQ),
      exact, rtol=1e-5)


@pytest.mark.parametrize("mode", list(seminar.ScoringMode))
def test_score_selected_equals_score(mode):
  _, retriever = small_models(top_k=2)
  retriever.attention.rerank_factor = 2
  # Repeated items tie in relevance; the first user has more items than the
  # shortlist of 4, the second fewer than K, the third none.
  items = tf.constant([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
                       [7, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], tf.int64)
  keywords = tf.constant(queries_of(items.numpy(), 2))
  per_user = tf.constant([[5, 6, 8], [7, 8, 9], [1, 2, 3]], tf.int64)
  retriever.score(items, keywords, per_user)
  if mode.quantized:
    retriever.quantize_item_keys()
  np.testing.assert_allclose(
      retriever.score_selected(items, keywords, per_user, mode),
      retriever.score(items, keywords, per_user, mode), rtol=1e-5, atol=1e-5)


def test_pq_relevance_equals_dot_product_with_decoded_keys():
  _, retriever = small_models()
  retriever.score(tf.constant([[1, 2]], tf.int64),
                  tf.zeros([1, 2, 1], tf.int64), tf.constant([3]))
  retriever.quantize_item_keys()
  candidates = retriever.encoder.items(tf.constant([[3, 4]]))
  history = tf.constant([[1, 2, 5]])
  keys = product_quantization.decode(
      tf.gather(retriever.item_key_codes, history), retriever.key_codebooks)
  queries = retriever.attention.selection_queries(candidates)
  for xla in (False, True):
    np.testing.assert_allclose(
        retriever.approximate_relevance(candidates, history, xla=xla),
        tf.einsum("bnd,bld->bnl", queries, keys).numpy(), rtol=1e-4,
        atol=1e-5)


def test_unknown_hyperparameters_are_rejected():
  with pytest.raises(ValueError, match="unknown SeminarConfig"):
    seminar.SeminarConfig.from_dict({"top_kk": 3})


def test_unknown_attention_scoring_is_rejected():
  with pytest.raises(ValueError, match="approximate"):
    seminar.SeminarConfig(attention_scoring="approximate")


def test_item_bias_starts_at_log_train_frequency():
  _, retriever = small_models(use_queries=False, use_text=False)
  counts = np.zeros(NUM_ITEMS)
  counts[1:4] = [6, 3, 1]
  retriever.start_item_bias_at_popularity(counts)
  bias = retriever.item_bias(tf.range(NUM_ITEMS)).numpy()[:, 0]
  # p = counts / 10; items never seen start at the floor log(p_min).
  np.testing.assert_allclose(bias[1:5], np.log([0.7, 0.4, 0.2, 0.1]),
                             rtol=1e-6)
  np.testing.assert_allclose(bias[5:], np.log(0.1), rtol=1e-6)
