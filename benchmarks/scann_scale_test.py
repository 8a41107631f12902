"""Tests the ScaNN sizing sweep's catalogue, recall and choice of setting."""

import numpy as np
import pytest

from benchmarks import scann_scale

_IDS = ["a", "b", "c"]
_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)


def test_a_catalogue_at_least_the_size_is_cut_not_grown():
  ids, vectors, how = scann_scale.catalogue_of_size(_IDS, _VECTORS, 2, 0.1, 0)

  assert ids == ["a", "b"]
  np.testing.assert_array_equal(vectors, _VECTORS[:2])
  assert how == "the model's own first 2 item vectors"


def test_a_smaller_catalogue_is_grown_around_its_real_vectors():
  ids, vectors, how = scann_scale.catalogue_of_size(_IDS, _VECTORS, 5, 0.1, 0)

  assert ids[:3] == _IDS and len(ids) == 5 and vectors.shape == (5, 2)
  assert how.startswith("grown: 3 real item vectors plus 2 jittered copies")


def test_recall_counts_exact_ids_found_per_row():
  found = np.array([["a", "b"], ["c", "x"]], dtype=object)
  exact_rows = np.array([[0, 1], [1, 2]])

  # Row 1 finds both of a, b; row 2 finds c but not b.
  assert scann_scale.recall_at_k(found, exact_rows, _IDS) == pytest.approx(
      0.75)


def test_the_cheapest_setting_meeting_the_recall_is_chosen():
  rows = [{"recall_at_100": 0.99, "cpu_ms_per_query": 3.0},
          {"recall_at_100": 0.97, "cpu_ms_per_query": 1.0},
          {"recall_at_100": 0.90, "cpu_ms_per_query": 0.5}]

  assert scann_scale.cheapest_meeting(rows, 0.95) is rows[1]
  assert scann_scale.cheapest_meeting(rows, 0.98) is rows[0]
  assert scann_scale.cheapest_meeting(rows, 0.995) is None


def test_timings_call_once_per_query_after_a_warm_up():
  calls = []
  timings = scann_scale.one_query_timings(calls.append, np.zeros((8, 2)))

  assert len(calls) == 5 + 8
  assert all(call.shape == (1, 2) for call in calls)
  assert timings["calls"] == 8 and timings["p50_ms"] <= timings["p99_ms"]


def test_searching_every_leaf_and_reordering_all_is_exact(tmp_path):
  rng = np.random.default_rng(0)
  database = rng.standard_normal((400, 8)).astype(np.float32)
  queries = rng.standard_normal((6, 8)).astype(np.float32)
  ids = [str(n) for n in range(400)]

  size = scann_scale.sweep_size(ids, database, queries, 0, [(1.0, 400)], 3,
                                str(tmp_path))

  assert size["items"] == 400 and size["num_leaves"] == 20
  assert size["rows"][0]["leaves_to_search"] == 20
  assert size["rows"][0]["recall_at_100"] == 1.0
  assert size["cheapest_meeting_goal"] is size["rows"][0]
  assert size["bruteforce_numpy"]["calls"] == 3
  assert size["index_disk_bytes"] > 400 * 8 * 4
