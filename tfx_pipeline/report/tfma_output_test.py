"""Tests for reading the Evaluator's output back: failures and slices."""

import tensorflow_model_analysis as tfma

from tfx_pipeline import evaluation
from tfx_pipeline.report import tfma_output


def _failure(is_diff, value, threshold):
  result = tfma.ValidationResult(validation_ok=False)
  per_slice = result.metric_validations_per_slice.add()
  per_slice.slice_key.SetInParent()
  failure = per_slice.failures.add()
  failure.metric_key.name = "recall_at_50"
  failure.metric_key.output_name = evaluation.MODEL_OUTPUT
  failure.metric_key.is_diff = is_diff
  failure.metric_value.double_value.value = value
  if is_diff:
    failure.metric_threshold.change_threshold.CopyFrom(threshold)
  else:
    failure.metric_threshold.value_threshold.CopyFrom(threshold)
  return result


def test_failures_in_words_name_slice_metric_value_and_threshold():
  value = _failure(False, 0.03, tfma.GenericValueThreshold(
      lower_bound={"value": 0.05}))
  assert tfma_output.failures_in_words(value) == [
      "overall: model recall_at_50 is 0.0300, but the gate requires at "
      "least 0.05."]
  change = _failure(True, -0.02, tfma.GenericChangeThreshold(
      absolute={"value": -0.01},
      direction=tfma.MetricDirection.HIGHER_IS_BETTER))
  assert tfma_output.failures_in_words(change) == [
      "overall: model recall_at_50 change vs the last blessed model is "
      "-0.0200, but the gate requires change vs the last blessed model >= "
      "-0.01 (absolute)."]


def test_slice_families_keep_pipeline_order_and_bucket_order():
  metrics = {(): {}, (("item_type", "item"),): {},
             (("user_activity_bucket", "heavy"),): {},
             (("user_activity_bucket", "light"),): {},
             (("item_popularity_bucket", "unseen"),): {},
             (("item_popularity_bucket", "head"),): {}}
  families = tfma_output.slice_families(metrics)
  assert list(families) == ["user_activity_bucket", "item_popularity_bucket",
                            "item_type"]
  assert [k[0][1] for k in families["user_activity_bucket"]] == [
      "light", "heavy"]
  assert [k[0][1] for k in families["item_popularity_bucket"]] == [
      "head", "unseen"]
