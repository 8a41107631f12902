"""TFMA metrics for full-ranking retrieval: Recall@k and NDCG@k.

The model's `evaluate` signature ranks each eval example's target item among
every catalogue item (history excluded) and outputs that 0-based rank. These
metrics turn ranks into Recall@k (the target is in the top k) and NDCG@k
(1 / log2(rank + 2) when in the top k, as there is one relevant item), and TFMA
averages them overall, per slice and per model, and checks thresholds on them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Iterable, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util


def recall_at_k(rank: np.ndarray, k: int) -> np.ndarray:
  return (rank < k).astype(np.float64)


def ndcg_at_k(rank: np.ndarray, k: int) -> np.ndarray:
  return np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)


@dataclasses.dataclass
class _MeanAccumulator:
  total: float = 0.0
  count: float = 0.0


class _MeanOfRankFunctionCombiner(beam.CombineFn):
  """Averages `score_fn(rank)` over examples."""

  def __init__(self, key: metric_types.MetricKey,
               score_fn: Callable[[np.ndarray], np.ndarray]):
    self._key = key
    self._score_fn = score_fn

  def create_accumulator(self) -> _MeanAccumulator:
    return _MeanAccumulator()

  def add_input(self, accumulator: _MeanAccumulator,
                element: metric_types.StandardMetricInputs) -> _MeanAccumulator:
    rank = np.asarray(
        element.get_predictions(self._key.model_name or None,
                                self._key.output_name or None),
        dtype=np.float64).reshape(-1)
    accumulator.total += float(self._score_fn(rank).sum())
    accumulator.count += rank.size
    return accumulator

  def merge_accumulators(
      self, accumulators: Iterable[_MeanAccumulator]) -> _MeanAccumulator:
    merged = _MeanAccumulator()
    for accumulator in accumulators:
      merged.total += accumulator.total
      merged.count += accumulator.count
    return merged

  def extract_output(self, accumulator: _MeanAccumulator):
    value = (accumulator.total / accumulator.count
             if accumulator.count else float("nan"))
    return {self._key: value}


def _rank_metric_computations(
    score_fn: Callable[[np.ndarray, int], np.ndarray], name: str, k: int,
    model_name: str = "", output_name: str = "",
    example_weighted: bool = False,
    sub_key: Optional[metric_types.SubKey] = None,
) -> metric_types.MetricComputations:
  key = metric_types.MetricKey(name=name, model_name=model_name,
                               output_name=output_name, sub_key=sub_key,
                               example_weighted=example_weighted)
  return [metric_types.MetricComputation(
      keys=[key],
      preprocessors=None,
      combiner=_MeanOfRankFunctionCombiner(key, functools.partial(score_fn, k=k)))]


def _recall_computations(name="recall", k=10, model_name="", output_name="",
                         example_weighted=False, sub_key=None):
  return _rank_metric_computations(recall_at_k, name, k, model_name,
                                   output_name, example_weighted, sub_key)


def _ndcg_computations(name="ndcg", k=10, model_name="", output_name="",
                       example_weighted=False, sub_key=None):
  return _rank_metric_computations(ndcg_at_k, name, k, model_name,
                                   output_name, example_weighted, sub_key)


class FullRankingRecall(metric_types.Metric):
  """Share of examples whose target item ranks in the top `k`."""

  def __init__(self, k: int = 10, name: Optional[str] = None):
    super().__init__(metric_util.merge_per_key_computations(_recall_computations),
                     k=k, name=name or f"recall_at_{k}")


class FullRankingNdcg(metric_types.Metric):
  """Mean NDCG@k with one relevant item per example."""

  def __init__(self, k: int = 10, name: Optional[str] = None):
    super().__init__(metric_util.merge_per_key_computations(_ndcg_computations),
                     k=k, name=name or f"ndcg_at_{k}")


metric_types.register_metric(FullRankingRecall)
metric_types.register_metric(FullRankingNdcg)
