"""Tests the serving benchmark's database growth, requests and verdicts."""

import os
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from benchmarks import serving_latency
from data import contract
from data import features
from models import serving_names
from tfx_pipeline import config as config_lib

_REAL_IDS = ["a", "b"]
_REAL = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)


def test_grown_database_keeps_real_rows_first_and_names_the_rest():
  ids, vectors = serving_latency.grow_database(_REAL_IDS, _REAL, 5, 0.1, 0)

  assert ids == ["a", "b", "synthetic-0", "synthetic-1", "synthetic-2"]
  assert vectors.dtype == np.float32 and vectors.shape == (5, 2)
  np.testing.assert_array_equal(vectors[:2], _REAL)


def test_synthetic_items_without_noise_copy_real_vectors():
  _, vectors = serving_latency.grow_database(_REAL_IDS, _REAL, 50, 0.0, 0)

  for row in vectors[2:]:
    assert min(np.abs(row - real).max() for real in _REAL) < 1e-6


def test_synthetic_items_keep_the_real_norms():
  _, vectors = serving_latency.grow_database(_REAL_IDS, _REAL, 50, 0.5, 0)

  norms = np.linalg.norm(vectors[2:], axis=1)
  assert np.all(np.isclose(norms, 5.0) | np.isclose(norms, 2.0))


def test_noise_scale_is_the_noise_norm_relative_to_the_vector():
  rng = np.random.default_rng(1)
  real = rng.standard_normal((20, 64)).astype(np.float32)
  real_ids = [str(n) for n in range(20)]
  _, vectors = serving_latency.grow_database(real_ids, real, 4020, 0.1, 0)

  unit = vectors[20:] / np.linalg.norm(vectors[20:], axis=1, keepdims=True)
  real_unit = real / np.linalg.norm(real, axis=1, keepdims=True)
  # Distance to the real direction each synthetic item was drawn around: the
  # noise component orthogonal to it, about 0.1 * sqrt(63 / 64).
  distance = np.min(np.linalg.norm(unit[:, None] - real_unit[None], axis=2),
                    axis=1)
  assert np.mean(distance) == pytest.approx(0.1, rel=0.05)


def test_growth_is_seeded():
  first = serving_latency.grow_database(_REAL_IDS, _REAL, 9, 0.1, 3)[1]
  again = serving_latency.grow_database(_REAL_IDS, _REAL, 9, 0.1, 3)[1]
  other = serving_latency.grow_database(_REAL_IDS, _REAL, 9, 0.1, 4)[1]

  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_growth_refuses_to_shrink_or_to_clash_with_real_ids():
  with pytest.raises(ValueError, match="cannot grow 2 items to 1"):
    serving_latency.grow_database(_REAL_IDS, _REAL, 1, 0.1, 0)
  with pytest.raises(ValueError, match="starts with"):
    serving_latency.grow_database(["a", "synthetic-7"], _REAL, 3, 0.1, 0)


def _dataset() -> contract.Dataset:
  # u1 has three positives, u2 two, u3 one (never held out); u1's item c is
  # listed before its history but is the newest.
  return contract.Dataset(interactions=contract.normalize_interactions(
      pd.DataFrame({"user_id": ["u1", "u2", "u1", "u1", "u2", "u3"],
                    "item_id": ["c", "x", "a", "b", "y", "z"],
                    "timestamp": [30, 100, 10, 20, 200, 5]})))


def test_eval_users_carry_the_history_before_the_held_out_item():
  users = serving_latency.eval_users(_dataset(), config_lib.ExamplesConfig())

  assert users == [serving_latency.EvalUser("u1", ["a", "b"], 30),
                   serving_latency.EvalUser("u2", ["x"], 200)]


def test_eval_users_follow_the_pipeline_split_settings():
  short_history = serving_latency.eval_users(
      _dataset(), config_lib.ExamplesConfig(history_length=1))
  two_held_out = serving_latency.eval_users(
      _dataset(), config_lib.ExamplesConfig(eval_holdout=2))
  temporal = serving_latency.eval_users(
      _dataset(), config_lib.ExamplesConfig(split="temporal",
                                            temporal_cut_quantile=0.9))

  assert short_history[0] == serving_latency.EvalUser("u1", ["b"], 30)
  # u2 has no positive left for train, so it is not an eval user.
  assert two_held_out == [serving_latency.EvalUser("u1", ["a"], 20)]
  # The cut is at 200: all of u1 is train, u2's y is its first eval item.
  assert temporal == [serving_latency.EvalUser("u2", ["x"], 200)]


def _inputs(request) -> dict:
  return {name: tf.make_ndarray(proto).tolist()
          for name, proto in request.inputs.items()}


def test_request_pool_sends_each_user_to_the_signature():
  users = [serving_latency.EvalUser("u1", ["a", "b"], 30),
           serving_latency.EvalUser("u2", [], 200)]

  scann = serving_latency.request_pool(users, "retrieval",
                                       serving_names.RETRIEVE_SCANN, 7)
  exact = serving_latency.request_pool(users, "retrieval",
                                       serving_names.retrieve_top(100), 7)

  assert [r.model_spec.signature_name for r in scann + exact] == (
      [serving_names.RETRIEVE_SCANN] * 2 +
      [serving_names.retrieve_top(100)] * 2)
  assert {r.model_spec.name for r in scann + exact} == {"retrieval"}
  assert _inputs(scann[0]) == {features.USER_ID: [b"u1"],
                               features.HISTORY_ITEM_IDS: [[b"a", b"b"]],
                               features.TIMESTAMP: [30],
                               serving_names.SCANN_K: 7}
  # An empty history is one padding id; only retrieve_scann takes k.
  assert _inputs(exact[1]) == {features.USER_ID: [b"u2"],
                               features.HISTORY_ITEM_IDS: [[b""]],
                               features.TIMESTAMP: [200]}


def _touch_version(directory) -> None:
  directory.mkdir(parents=True)
  (directory / "saved_model.pb").write_bytes(b"")


def test_model_dir_names_a_version_a_model_or_a_serving_base(tmp_path):
  serving = tmp_path / "serving"
  for version in ("9", "10"):
    _touch_version(serving / "retrieval" / version)

  newest = str(serving / "retrieval" / "10")
  assert serving_latency.pushed_version_dir(
      str(serving / "retrieval" / "9")) == str(serving / "retrieval" / "9")
  assert serving_latency.pushed_version_dir(str(serving / "retrieval")) == newest
  assert serving_latency.pushed_version_dir(str(serving)) == newest
  with pytest.raises(ValueError, match="neither"):
    serving_latency.pushed_version_dir(str(tmp_path))


def _levels(scann_p99_ms: float, scann_failed: int = 0) -> list[dict]:
  rows = []
  for concurrency in (1, 8):
    for signature, p50, p99 in (
        (serving_names.QUERY_EMBEDDING, 2.0, 4.0),
        (serving_names.RETRIEVE_SCANN, 3.0, scann_p99_ms),
        (serving_names.retrieve_top(100), 6.0, 20.0)):
      rows.append({"concurrency": concurrency, "signature": signature,
                   "p50_ms": p50 * concurrency, "p99_ms": p99 * concurrency,
                   "failed": (scann_failed
                              if signature == serving_names.RETRIEVE_SCANN
                              else 0)})
  return rows


def test_scann_is_compared_with_brute_force_at_each_concurrency():
  comparisons = serving_latency.compare_with_baseline(_levels(5.0))

  assert comparisons == [
      {"concurrency": 1, "scann_over_top100_p50": 0.5,
       "scann_over_top100_p99": 0.25, "scann_minus_query_embedding_p50_ms": 1.0},
      {"concurrency": 8, "scann_over_top100_p50": 0.5,
       "scann_over_top100_p99": 0.25, "scann_minus_query_embedding_p50_ms": 8.0}]


def test_goal_is_p99_at_most_10_ms_at_concurrency_1_without_failures():
  assert serving_latency.goal_verdict(_levels(10.0))["met"]
  assert not serving_latency.goal_verdict(_levels(10.01))["met"]
  assert not serving_latency.goal_verdict(_levels(9.0, scann_failed=1))["met"]
  assert serving_latency.goal_verdict(_levels(10.01))["p99_ms"] == 10.01


def test_process_cpu_seconds_follow_the_process_clock():
  before = serving_latency.process_cpu_s(os.getpid())
  clock_before = time.process_time()
  while time.process_time() - clock_before < 0.2:
    pass
  used = serving_latency.process_cpu_s(os.getpid()) - before

  # /proc counts in clock ticks (10 ms).
  assert used == pytest.approx(time.process_time() - clock_before, abs=0.03)


def test_qps_is_set_against_the_cores_over_the_server_cpu_per_request():
  levels = [{"concurrency": 1, "signature": serving_names.RETRIEVE_SCANN,
             "qps": 200.0, "server_cpu_ms_per_request": 4.0},
            {"concurrency": 8, "signature": serving_names.RETRIEVE_SCANN,
             "qps": 400.0, "server_cpu_ms_per_request": 4.0},
            {"concurrency": 8, "signature": serving_names.retrieve_top(100),
             "qps": 9.0, "server_cpu_ms_per_request": 1.0}]

  bounds = serving_latency.qps_bounds(levels, cores=2)

  # 2 cores / 4 ms per request: at most 500 requests a second.
  assert bounds == [
      {"concurrency": 1, "qps": 200.0, "server_cpu_ms_per_request": 4.0,
       "cpu_bound_qps_ceiling": 500.0, "share_of_ceiling": 0.4},
      {"concurrency": 8, "qps": 400.0, "server_cpu_ms_per_request": 4.0,
       "cpu_bound_qps_ceiling": 500.0, "share_of_ceiling": 0.8}]


def test_index_disk_bytes_sum_the_index_files(tmp_path):
  searcher = tmp_path / "assets.extra" / "scann_index" / "searcher"
  searcher.mkdir(parents=True)
  (searcher / "dataset.npy").write_bytes(b"x" * 300)
  (searcher.parent / "item_ids.txt").write_bytes(b"a\nb\n")
  (tmp_path / "saved_model.pb").write_bytes(b"y" * 1000)

  assert serving_latency.index_disk_bytes(str(tmp_path)) == 304
