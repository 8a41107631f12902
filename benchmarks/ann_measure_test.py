"""Tests for ann_measure: exact top-k, recall and the interleaved timing."""

import numpy as np

from benchmarks import ann_measure


def _data(seed=0, n=200, b=12, d=8):
  rng = np.random.default_rng(seed)
  return (rng.standard_normal((n, d)).astype(np.float32),
          rng.standard_normal((b, d)).astype(np.float32))


def test_exact_top_k_is_the_best_scores_best_first_in_any_chunking():
  database, queries = _data()
  scores = queries @ database.T
  expected = np.argsort(-scores, axis=1)[:, :ann_measure.K]
  np.testing.assert_array_equal(
      ann_measure.exact_top_k(database, queries, chunk=5), expected)


def test_recall_counts_the_exact_neighbours_found():
  exact = np.arange(20).reshape(2, 10)
  found = exact.copy()
  found[1, 5:] = 100
  assert ann_measure.recall_at_k(found, exact) == 0.75


def test_measure_and_summarize_compare_every_method_with_the_first():
  database, queries = _data()

  def exact(batch):
    return ann_measure.exact_top_k(database, batch)

  def first_half(batch):
    return ann_measure.exact_top_k(database[:100], batch)

  methods = [ann_measure.Method("exact", exact, {}),
             ann_measure.Method("half", first_half, {"note": 1})]
  ann_measure.measure(methods, queries, rounds=2, min_seconds=0.0, seed=0)
  rows = ann_measure.summarize(methods)
  assert [row["method"] for row in rows] == ["exact", "half"]
  assert rows[0]["recall_at_10"] == 1.0 and rows[1]["recall_at_10"] < 1.0
  assert rows[0]["single_qps_vs_bruteforce"] == 1.0
  assert rows[1]["note"] == 1
  assert rows[0]["single_calls"] == len(queries)
