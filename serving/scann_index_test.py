"""Tests for the ScaNN index artifact."""

import shutil

import numpy as np
import pytest

from serving import scann_index


def _clustered_embeddings(n_items=400, dim=16, seed=0):
  rng = np.random.default_rng(seed)
  embeddings = rng.normal(size=(n_items, dim)).astype(np.float32)
  return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def test_search_matches_brute_force_top_k(tmp_path):
  embeddings = _clustered_embeddings()
  ids = [f"item_{i}" for i in range(len(embeddings))]
  index = scann_index.ScannIndex.build(embeddings, ids)
  index.write(str(tmp_path))
  loaded = scann_index.ScannIndex.load(str(tmp_path))
  queries = embeddings[:5] + 0.01
  found, scores = loaded.search(queries, k=10)
  exact = np.argsort(-(queries @ embeddings.T), axis=1)[:, :10]
  recall = np.mean([len(set(f) & {ids[i] for i in e}) / 10
                    for f, e in zip(found, exact)])
  assert recall >= 0.9
  assert np.all(np.diff(scores, axis=1) <= 1e-5)


def test_excluded_ids_are_never_returned(tmp_path):
  embeddings = _clustered_embeddings(n_items=50)
  ids = [str(i) for i in range(50)]
  index = scann_index.ScannIndex.build(embeddings, ids)
  exclude = {"0", "1", "2"}
  found, _ = index.search(embeddings[:1], k=5, exclude_ids=[exclude])
  assert len(set(found[0])) == 5
  assert not set(found[0]) & exclude


def test_bad_arguments_are_rejected():
  index = scann_index.ScannIndex.build(_clustered_embeddings(20, 4),
                                       [str(i) for i in range(20)])
  with pytest.raises(ValueError, match="k must be"):
    index.search(np.zeros((1, 4)), k=21)
  with pytest.raises(ValueError, match="queries must be"):
    index.search(np.zeros((1, 3)), k=2)
  with pytest.raises(FileNotFoundError):
    scann_index.ScannIndex.load("/nonexistent")


def test_a_moved_index_loads_from_its_new_place(tmp_path):
  embeddings = _clustered_embeddings(n_items=64, dim=8)
  ids = [str(i) for i in range(64)]
  built = tmp_path / "built"
  scann_index.ScannIndex.build(embeddings, ids).write(str(built))
  moved = tmp_path / "moved"
  shutil.copytree(built, moved)
  shutil.rmtree(built)
  loaded = scann_index.ScannIndex.load(str(moved))
  found, _ = loaded.search(embeddings[:1], k=3)
  assert found[0][0] == "0"


def _max_over_vectors_top_k(queries, embeddings, ids, k, exclude):
  scores = (queries @ embeddings.T).max(axis=1)
  ranked = [i for i in np.argsort(-scores[0]) if ids[i] not in exclude][:k]
  return [ids[i] for i in ranked], scores[0][ranked]


def test_multi_vector_search_merges_by_max_score(tmp_path):
  embeddings = _clustered_embeddings(n_items=100, dim=8)
  ids = [str(i) for i in range(100)]
  scann_index.ScannIndex.build(embeddings, ids).write(str(tmp_path))
  index = scann_index.ScannIndex.load(str(tmp_path))
  # Two interests of one user: near item 0 and near item 50.
  queries = embeddings[np.newaxis, [0, 50]] + 0.01
  exclude = {"0"}
  found, scores = index.search(queries, k=8, exclude_ids=[exclude])
  expected_ids, expected_scores = _max_over_vectors_top_k(
      queries, embeddings, ids, 8, exclude)
  assert found.shape == (1, 8)
  assert list(found[0]) == expected_ids
  assert "50" in found[0] and "0" not in found[0]
  np.testing.assert_allclose(scores[0], expected_scores, rtol=1e-4, atol=1e-4)


def test_merge_settings_travel_with_the_index(tmp_path):
  embeddings = _clustered_embeddings(n_items=32, dim=4)
  params = scann_index.ScannParams(neighbors_per_vector=12,
                                   merge_rule="round_robin")
  scann_index.ScannIndex.build(embeddings, [str(i) for i in range(32)],
                               params).write(str(tmp_path))
  loaded = scann_index.ScannIndex.load(str(tmp_path))
  assert loaded.params.neighbors_per_vector == 12
  assert loaded.params.merge_rule == "round_robin"
  found, _ = loaded.search(embeddings[np.newaxis, :3], k=3)
  # Round robin: each of the three vectors' best item first, itself.
  assert list(found[0]) == ["0", "1", "2"]


def test_unknown_merge_rule_is_refused():
  with pytest.raises(ValueError, match="merge rule"):
    scann_index.ScannParams(merge_rule="sum")


def test_fitted_params_scale_with_the_catalogue():
  at_1m = scann_index.ScannParams().fitted_to(1_000_000)
  assert (at_1m.num_leaves, at_1m.num_leaves_to_search, at_1m.reorder_k) == (
      1000, 100, 1000)
  at_100k = scann_index.ScannParams().fitted_to(100_000)
  assert (at_100k.num_leaves, at_100k.num_leaves_to_search) == (316, 60)
  small = scann_index.ScannParams().fitted_to(1432)
  assert (small.num_leaves, small.num_leaves_to_search) == (37, 37)
  assert small.training_sample_size == 1432


def test_explicit_params_are_kept_when_fitting():
  params = scann_index.ScannParams(num_leaves=7, num_leaves_to_search=3,
                                   reorder_k=150).fitted_to(1_000_000)
  assert (params.num_leaves, params.num_leaves_to_search,
          params.reorder_k) == (7, 3, 150)
  # Never more leaves than sqrt(n), never fewer candidates than the k asked.
  capped = scann_index.ScannParams(num_leaves=500, reorder_k=10).fitted_to(400)
  assert (capped.num_leaves, capped.reorder_k) == (20, 100)


def _near_tied_embeddings(n_items, dim, sources, noise, seed):
  """Jittered copies of a few source vectors, as
  `benchmarks.serving_latency.grow_database` grows a catalogue: each item's
  exact neighbours are near-ties, the hard case for a quantised first pass."""
  rng = np.random.default_rng(seed)
  source = rng.standard_normal((sources, dim)).astype(np.float32)
  rows = source[rng.integers(sources, size=n_items)]
  norms = np.linalg.norm(rows, axis=1, keepdims=True)
  return rows + rng.standard_normal(rows.shape).astype(np.float32) * (
      noise * norms / np.sqrt(dim))


def test_fitted_params_find_the_exact_top_100_among_near_ties():
  embeddings = _near_tied_embeddings(20_000, 32, 200, 0.1, seed=0)
  queries = np.random.default_rng(1).standard_normal((50, 32)).astype(
      np.float32)
  ids = [str(i) for i in range(len(embeddings))]
  index = scann_index.ScannIndex.build(embeddings, ids)
  found, _ = index.search(queries, k=100)
  exact = np.argsort(-(queries @ embeddings.T), axis=1)[:, :100]
  recall = np.mean([len(set(f) & {ids[i] for i in e}) / 100
                    for f, e in zip(found, exact)])
  # The former defaults (100 leaves, 20 searched, reorder 250) reach 0.89.
  assert recall >= 0.95


def test_search_settings_can_change_on_a_built_index():
  embeddings = _clustered_embeddings(n_items=400, dim=8)
  index = scann_index.ScannIndex.build(embeddings,
                                       [str(i) for i in range(400)])
  wider = index.searching_with(num_leaves_to_search=20, reorder_k=400)
  assert (wider.params.num_leaves_to_search, wider.params.reorder_k) == (
      20, 400)
  assert index.params.reorder_k == scann_index.FITTED_REORDER_K
  # Every leaf searched and every item reordered: the exact top 10.
  found, _ = wider.search(embeddings[:3], k=10)
  exact = np.argsort(-(embeddings[:3] @ embeddings.T), axis=1)[:, :10]
  assert [list(row) for row in found] == [[str(i) for i in row]
                                          for row in exact]
