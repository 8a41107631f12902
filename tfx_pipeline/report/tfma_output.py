"""The Evaluator's TFMA output, read back for the evaluation report.

`load_evaluation` reads one Evaluator output directory with
`tfma.load_eval_result` and `tfma.load_validation_result` into an
`Evaluation`: the candidate's metrics per slice, the last blessed model's when
the Evaluator compared against one, and every threshold of the blessing gate
with what was measured for it. Nothing is recomputed: the change against the
last blessed model is TFMA's `*_diff` metric, and the thresholds are those of
the EvalConfig stored with the output. `plots` and `html_page` draw and
render what this module reads.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from data import features
from data import global_passes
from data import storage
from tfx_pipeline import evaluation
from tfx_pipeline.report import eval_results
from tfx_pipeline.report import run_summary

OUTPUT_LABELS = {evaluation.MODEL_OUTPUT: "model",
                 evaluation.BASELINE_OUTPUT: "most-popular"}
# A ranking family's EvalConfig has a single, unnamed output. The report files
# its metrics under the model's output name, so that tables and plots treat
# retrieval and ranking evaluations alike.
_UNNAMED_OUTPUT = ""
OVERALL = ()
# Buckets read best in their natural order, not alphabetically.
_VALUE_ORDER = {
    features.USER_ACTIVITY_BUCKET: global_passes.USER_ACTIVITY_BUCKETS,
    features.ITEM_POPULARITY_BUCKET: global_passes.ITEM_POPULARITY_BUCKETS,
}

SliceKey = tuple  # ((column, value), ...); OVERALL for the whole eval split.
Metrics = dict  # SliceKey -> "output/metric" -> value


@dataclasses.dataclass
class Threshold:
  """One check of the blessing gate and what the Evaluator measured for it.

  Attributes:
    metric: metric name, e.g. `recall_at_50`.
    output: TFMA output name the metric is computed on.
    slices: the slices it applies to, in words.
    is_change: a change threshold (vs the last blessed model), not a value
      threshold.
    requirement: the condition, in words.
    value: the measured value (TFMA's `*_diff` for change thresholds) when
      the threshold names one slice; None when it covers several.
    failed: whether the validation result lists a failure for it.
  """
  metric: str
  output: str
  slices: str
  is_change: bool
  requirement: str
  value: Optional[float]
  failed: bool


@dataclasses.dataclass
class Evaluation:
  """One Evaluator output, as TFMA reads it back.

  Attributes:
    uri: the Evaluator output directory.
    model_location: the evaluated (candidate) model.
    metrics: the candidate's metrics per slice, TFMA's `*_diff` included
      when a blessed model was evaluated beside it.
    blessed_model_location: the last blessed model, "" when there was none.
    blessed_model_metrics: its metrics per slice, empty when there was none.
    validation: TFMA's ValidationResult, the source of the blessing.
    thresholds: every threshold of the gate, with its outcome.
  """
  uri: str
  model_location: str
  metrics: Metrics
  blessed_model_location: str
  blessed_model_metrics: Metrics
  validation: tfma.ValidationResult
  thresholds: list[Threshold]

  def value(self, slice_key: SliceKey, output: str, metric: str,
            blessed_model: bool = False) -> Optional[float]:
    table = self.blessed_model_metrics if blessed_model else self.metrics
    return table.get(slice_key, {}).get(f"{output}/{metric}")

  @property
  def has_blessed_model(self) -> bool:
    return bool(self.blessed_model_metrics)

  def metric_names(self) -> list[str]:
    """The pipeline's ranking metrics this output holds, in usual order."""
    overall = self.metrics.get(OVERALL, {})
    return [name for name in (evaluation.metric_names() +
                              list(evaluation.RANKING_METRIC_NAMES))
            if f"{evaluation.MODEL_OUTPUT}/{name}" in overall]

  def example_count(self, slice_key: SliceKey) -> Optional[float]:
    return self.value(slice_key, evaluation.MODEL_OUTPUT, "example_count")


def _model_names(config) -> tuple[Optional[str], Optional[str]]:
  """(candidate, blessed model) names; TFMA names them only when both ran."""
  candidate = blessed = None
  for spec in config.model_specs:
    if spec.is_baseline:
      blessed = spec.name
    else:
      candidate = spec.name or None
  return candidate, blessed


def load_evaluation(uri: str) -> Evaluation:
  """Reads an Evaluator output directory back with TFMA."""
  if not storage.isfile(storage.join(uri, "eval_config.json")):
    raise FileNotFoundError(f"{uri} is not an Evaluator output (no "
                            "eval_config.json)")
  result = tfma.load_eval_result(uri)
  candidate, blessed = _model_names(result.config)
  if candidate:
    result = tfma.load_eval_result(uri, model_name=candidate)
  blessed_result = (tfma.load_eval_result(uri, model_name=blessed)
                    if blessed else None)
  metrics = _name_unnamed_output(eval_results.flatten_metrics(result))
  validation = tfma.load_validation_result(uri)
  return Evaluation(
      uri=uri, model_location=result.model_location, metrics=metrics,
      blessed_model_location=(blessed_result.model_location
                              if blessed_result else ""),
      blessed_model_metrics=(
          _name_unnamed_output(eval_results.flatten_metrics(blessed_result))
          if blessed_result else {}),
      validation=validation,
      thresholds=_thresholds(result.config, candidate, metrics, validation))


def _output_name(output: str) -> str:
  return evaluation.MODEL_OUTPUT if output == _UNNAMED_OUTPUT else output


def _name_unnamed_output(metrics: Metrics) -> Metrics:
  """Files bare metric names (an unnamed output) under the model's output."""
  return {slice_key: {(key if "/" in key else
                       f"{evaluation.MODEL_OUTPUT}/{key}"): value
                      for key, value in row.items()}
          for slice_key, row in metrics.items()}


def _spec_slice(spec) -> tuple[str, Optional[SliceKey]]:
  """A SlicingSpec in words, and its one slice when it names exactly one."""
  if spec is None:
    return "every slice", None
  if not spec.feature_keys and not spec.feature_values:
    return "overall", OVERALL
  if spec.feature_keys:
    return "every " + " x ".join(spec.feature_keys) + " slice", None
  key = tuple(sorted(spec.feature_values.items()))
  return run_summary.slice_name(key), key


def _requirement(threshold, is_change: bool) -> str:
  """A GenericValueThreshold or GenericChangeThreshold, in words."""
  if not is_change:
    bounds = []
    if threshold.HasField("lower_bound"):
      bounds.append(f"at least {threshold.lower_bound.value:g}")
    if threshold.HasField("upper_bound"):
      bounds.append(f"at most {threshold.upper_bound.value:g}")
    return " and ".join(bounds) or "any value"
  # TFMA compares candidate - blessed model with the bound, in the direction
  # in which the metric improves.
  sign = (">=" if threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
          else "<=")
  return " and ".join(
      f"change vs the last blessed model {sign} "
      f"{getattr(threshold, kind).value:+g} ({kind})"
      for kind in ("absolute", "relative") if threshold.HasField(kind)
  ) or "any change"


def _failure_keys(validation) -> set[tuple]:
  keys = set()
  for per_slice in validation.metric_validations_per_slice:
    slice_key = tfma.slicer.deserialize_slice_key(per_slice.slice_key)
    for failure in per_slice.failures:
      key = failure.metric_key
      keys.add((slice_key, key.name, key.output_name, key.is_diff))
  return keys


def _thresholds(config, candidate: Optional[str], metrics: Metrics,
                validation) -> list[Threshold]:
  """Every threshold the candidate was gated on, with value and outcome."""
  failures = _failure_keys(validation)
  rows = []
  by_key = metric_specs.metric_thresholds_from_metrics_specs(
      config.metrics_specs, config)
  for key, entries in by_key.items():
    if (key.model_name or None) != candidate:
      continue
    # Per-slice thresholds come as (slicing spec, threshold) pairs; a plain
    # `threshold` applies to every slice.
    if not isinstance(entries, list):
      entries = [(None, entries)]
    for spec, threshold in entries:
      slices, slice_key = _spec_slice(spec)
      name = f"{key.name}_diff" if key.is_diff else key.name
      model_output = _output_name(key.output_name)
      value = (metrics.get(slice_key, {}).get(f"{model_output}/{name}")
               if slice_key is not None else None)
      failed = any(
          (slice_key is None or failed_slice == slice_key) and
          (metric, output, is_diff) == (key.name, key.output_name, key.is_diff)
          for failed_slice, metric, output, is_diff in failures)
      rows.append(Threshold(key.name, model_output, slices, key.is_diff,
                            _requirement(threshold, key.is_diff), value,
                            failed))
  return sorted(rows, key=lambda t: (t.metric, t.output, t.is_change))


def failures_in_words(validation) -> list[str]:
  """Why a ValidationResult is not OK, one sentence per problem."""
  lines = []
  for per_slice in validation.metric_validations_per_slice:
    where = run_summary.slice_name(
        tfma.slicer.deserialize_slice_key(per_slice.slice_key))
    for failure in per_slice.failures:
      key = failure.metric_key
      output = _output_name(key.output_name)
      what = OUTPUT_LABELS.get(output, output)
      measured = (f"{key.name} change vs the last blessed model"
                  if key.is_diff else key.name)
      threshold = (failure.metric_threshold.change_threshold if key.is_diff
                   else failure.metric_threshold.value_threshold)
      value = (f"{failure.metric_value.double_value.value:.4f}"
               if failure.metric_value.HasField("double_value") else "unknown")
      line = (f"{where}: {what} {measured} is {value}, but the gate requires "
              f"{_requirement(threshold, key.is_diff)}.")
      lines.append(line + (f" TFMA: {failure.message}" if failure.message
                           else ""))
  for missing in validation.missing_slices:
    lines.append(f"Slice {_spec_slice(missing)[0]} has a threshold but no "
                 "eval examples.")
  if validation.missing_thresholds:
    lines.append("A thresholded metric was not computed, so its threshold "
                 "could not pass.")
  return lines


def _rank(order: Sequence[str], name: str) -> tuple:
  """Sorts names in `order` first, in that order, then the rest by name."""
  return (order.index(name), "") if name in order else (len(order), name)


def slice_families(metrics: Metrics) -> dict[str, list[SliceKey]]:
  """Single-feature slices grouped by feature, pipeline slice features first."""
  families = {}
  for slice_key in metrics:
    if len(slice_key) == 1:
      families.setdefault(slice_key[0][0], []).append(slice_key)
  return {
      column: sorted(families[column],
                     key=lambda k, c=column: _rank(_VALUE_ORDER.get(c, ()),
                                                   str(k[0][1])))
      for column in sorted(families,
                           key=lambda c: _rank(features.SLICE_FEATURES, c))}


def headline_metric(ev: Evaluation) -> str:
  """The gated metric if there is one, else the first metric."""
  for threshold in ev.thresholds:
    if threshold.output == evaluation.MODEL_OUTPUT:
      return threshold.metric
  return ev.metric_names()[0]


def run_evaluation_uri(summary: run_summary.RunSummary) -> str:
  """The Evaluator output of a run; a clear error when it has none."""
  uri = summary.artifacts.get("Evaluator.evaluation")
  if not uri:
    raise LookupError(f"run {summary.run_id} has no Evaluator output (it "
                      "stopped before evaluation)")
  return uri
