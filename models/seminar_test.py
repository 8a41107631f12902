"""Tests for SEMINAR: queries, image input, PSU objectives and the retriever."""

import numpy as np
import pytest
import tensorflow as tf

from models import seminar
from models.layers import product_quantization

NUM_ITEMS = 12
NUM_TOKENS = 9
# Item i has tokens (i % 8) + 1 and ((i + 3) % 8) + 1; item 0 is padding.
ITEM_TOKENS = np.zeros((NUM_ITEMS, 3), np.int64)
ITEM_TOKENS[1:, 0] = np.arange(1, NUM_ITEMS) % 8 + 1
ITEM_TOKENS[1:, 1] = (np.arange(1, NUM_ITEMS) + 3) % 8 + 1


def _config(**overrides):
  values = dict(embedding_dim=8, num_heads=2, top_k=3, dropout=0.0,
                num_negatives=5, pq_subspaces=2, pq_centroids=4)
  values.update(overrides)
  return seminar.SeminarConfig(**values)


def _batch():
  items = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 0, 0], [9, 10, 0, 0, 0]],
                   np.int64)
  keywords = seminar.derive_queries(items, ITEM_TOKENS, num_keywords=1)
  return {"items": tf.constant(items), "keywords": tf.constant(keywords)}


def _models(seed=0, image_vectors=None, **overrides):
  tf.keras.utils.set_random_seed(seed)
  return seminar.build_seminar(ITEM_TOKENS, NUM_TOKENS, _config(**overrides),
                               image_vectors)


def test_derived_queries_are_subsets_of_the_item_tokens():
  items = np.array([[3, 0], [5, 7]])
  queries = seminar.derive_queries(items, ITEM_TOKENS, num_keywords=1, seed=3)
  assert queries.shape == (2, 2, 1)
  assert queries[0, 1, 0] == 0, "padding interactions have empty queries"
  for item, query in ((3, queries[0, 0]), (5, queries[1, 0]),
                      (7, queries[1, 1])):
    assert set(query) <= set(ITEM_TOKENS[item]) - {0}
  both = seminar.derive_queries(np.array([3]), ITEM_TOKENS, num_keywords=4)
  assert sorted(both[0]) == [0, 0, 4, 7]


def test_image_vectors_file_is_aligned_with_item_ids(tmp_path):
  path = tmp_path / "images.tsv"
  path.write_text("b\t1.0,2.0\na\t3 4\nunknown\t5,6\n")
  table = seminar.load_image_vectors(path, ["", "a", "b", "c"])
  np.testing.assert_allclose(table, [[0, 0], [3, 4], [1, 2], [0, 0]])
  path.write_text("a\t1,2\nb\t1,2,3\n")
  with pytest.raises(ValueError, match="width"):
    seminar.load_image_vectors(path, ["", "a", "b"])


def test_query_embedding_is_the_mean_of_keyword_embeddings():
  pretrainer, _ = _models()
  encoder = pretrainer.encoder
  query = encoder.queries(tf.constant([[2, 5, 0]])).numpy()
  table = encoder.token_embedding.embeddings.numpy()
  np.testing.assert_allclose(query[0], (table[2] + table[5]) / 2, rtol=1e-5)


def test_item_embedding_gates_id_text_and_image_views():
  images = np.random.default_rng(0).normal(size=(NUM_ITEMS, 4)).astype(
      np.float32)
  pretrainer, _ = _models(image_vectors=images)
  encoder = pretrainer.encoder
  assert encoder.num_views == 3
  views = encoder.views(tf.constant([1, 2]))
  mixed = encoder.items(tf.constant([1, 2])).numpy()
  gates = tf.nn.softmax(encoder.view_gate(tf.concat(views, -1))).numpy()
  expected = sum(gates[:, v:v + 1] * views[v].numpy() for v in range(3))
  np.testing.assert_allclose(mixed, expected, rtol=1e-5, atol=1e-6)
  id_only, _ = _models(use_text=False)
  np.testing.assert_allclose(
      id_only.encoder.items(tf.constant([3])).numpy(),
      id_only.encoder.id_embedding(tf.constant([3])).numpy())


@pytest.mark.parametrize("disabled", ["next_pair_weight", "alignment_weight",
                                      "relevance_weight"])
def test_each_psu_objective_switches_off(disabled):
  pretrainer, _ = _models(**{disabled: 0.0})
  expected = {"next_pair", "alignment", "relevance"}
  expected.discard(disabled.removesuffix("_weight"))
  assert set(pretrainer.losses_of(_batch())) == expected


def test_psu_training_reduces_every_objective():
  pretrainer, _ = _models()
  batch = _batch()
  before = pretrainer.losses_of(batch)
  # Eager: tracing the train step costs more than these few steps.
  pretrainer.compile(optimizer=tf.keras.optimizers.Adam(0.05),
                     run_eagerly=True)
  pretrainer.fit(tf.data.Dataset.from_tensors(batch).repeat(15), verbose=0)
  after = pretrainer.losses_of(batch)
  for name, loss in before.items():
    assert after[name] < 0.8 * loss, name


def test_retriever_restores_the_psu_and_learns():
  pretrainer, retriever = _models()
  retriever.restore_pretrained(pretrainer)
  for name in ("encoder", "attention"):
    for a, b in zip(getattr(retriever, name).get_weights(),
                    getattr(pretrainer, name).get_weights()):
      np.testing.assert_array_equal(a, b)
  batch = _batch()
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
  _, retriever = _models(top_k=8)
  items = tf.constant([[1, 2, 3, 0], [4, 0, 0, 0]], tf.int64)
  keywords = tf.constant(seminar.derive_queries(items.numpy(), ITEM_TOKENS, 1))
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
  _, retriever = _models(top_k=2)
  retriever.attention.rerank_factor = 2
  # Repeated items tie in relevance; the first user has more items than the
  # shortlist of 4, the second fewer than K, the third none.
  items = tf.constant([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
                       [7, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], tf.int64)
  keywords = tf.constant(seminar.derive_queries(items.numpy(), ITEM_TOKENS, 2))
  per_user = tf.constant([[5, 6, 8], [7, 8, 9], [1, 2, 3]], tf.int64)
  retriever.score(items, keywords, per_user)
  if mode.quantized:
    retriever.quantize_item_keys()
  np.testing.assert_allclose(
      retriever.score_selected(items, keywords, per_user, mode),
      retriever.score(items, keywords, per_user, mode), rtol=1e-5, atol=1e-5)


def test_pq_relevance_equals_dot_product_with_decoded_keys():
  _, retriever = _models()
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
