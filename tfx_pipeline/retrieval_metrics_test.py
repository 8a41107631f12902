"""Tests for the full-ranking retrieval TFMA metrics."""

import numpy as np
import pytest
from tensorflow_model_analysis.metrics import metric_types

from models import serving_names
from tfx_pipeline import retrieval_metrics


def test_recall_and_ndcg_from_known_ranks():
  ranks = np.array([0.0, 1.0, 9.0, 10.0, 49.5])
  np.testing.assert_allclose(retrieval_metrics.recall_at_k(ranks, 10),
                             [1, 1, 1, 0, 0])
  np.testing.assert_allclose(retrieval_metrics.ndcg_at_k(ranks, 10),
                             [1.0, 1 / np.log2(3), 1 / np.log2(11), 0, 0])


def _combine(metric, ranks):
  computations = metric.computations(output_names=[serving_names.TARGET_RANK])
  assert len(computations) == 1
  computation = computations[0]
  combiner = computation.combiner
  halves = [combiner.create_accumulator(), combiner.create_accumulator()]
  for i, rank in enumerate(ranks):
    element = metric_types.StandardMetricInputs(
        predictions={serving_names.TARGET_RANK: np.array([rank])}, labels=None)
    halves[i % 2] = combiner.add_input(halves[i % 2], element)
  output = combiner.extract_output(combiner.merge_accumulators(halves))
  (key, value), = output.items()
  return key, value


@pytest.mark.parametrize("metric, expected", [
    (retrieval_metrics.FullRankingRecall(k=2), 0.5),
    (retrieval_metrics.FullRankingNdcg(k=2), (1.0 + 1 / np.log2(3)) / 4),
])
def test_combiner_averages_over_examples(metric, expected):
  key, value = _combine(metric, [0.0, 1.0, 2.0, 30.0])
  assert key.output_name == serving_names.TARGET_RANK
  assert value == pytest.approx(expected)


def test_default_names_carry_k():
  assert retrieval_metrics.FullRankingRecall(k=50).name == "recall_at_50"
  assert retrieval_metrics.FullRankingNdcg(k=10).name == "ndcg_at_10"
