"""Tests for eval_results."""

import types

from tfx_pipeline.report import eval_results


def test_flatten_metrics_keys_each_slice_by_output_and_metric():
  result = types.SimpleNamespace(slicing_metrics=[
      ((), {"target_rank": {"": {"recall_at_10": {"doubleValue": 0.25},
                                 "plot": {"bytesValue": "x"}}},
            "": {"": {"example_count": {"doubleValue": 7.0}}}}),
      ((("bucket", "a"),), {"target_rank": {"": {"recall_at_10": {
          "doubleValue": 0.5}}}}),
  ])
  assert eval_results.flatten_metrics(result) == {
      (): {"target_rank/recall_at_10": 0.25, "example_count": 7.0},
      (("bucket", "a"),): {"target_rank/recall_at_10": 0.5}}
