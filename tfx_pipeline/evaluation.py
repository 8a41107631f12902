"""TFMA configuration: metrics, slices and the blessing gate.

Retrieval families are scored by full-ranking Recall@k/NDCG@k of their
`evaluate` signature's target ranks. Ranking (CTR) families (kind
`models.families.RANKING`) are scored by AUC and log loss of the
`probability` their `evaluate` signature returns for each labelled example.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from data import features
from models import families
from models import serving_names

METRICS_MODULE = "tfx_pipeline.retrieval_metrics"
RECALL_KS = (10, 50, 100)
NDCG_KS = (10,)
MODEL_OUTPUT = serving_names.TARGET_RANK
BASELINE_OUTPUT = serving_names.POPULARITY_TARGET_RANK
RANKING_METRIC_NAMES = ("auc", "binary_crossentropy", "calibration",
                        "mean_label", "mean_prediction")
RANKING_GATE_METRIC = "auc"
LOG_LOSS_METRIC = "binary_crossentropy"


def metric_names() -> list[str]:
  return ([f"recall_at_{k}" for k in RECALL_KS] +
          [f"ndcg_at_{k}" for k in NDCG_KS])


def _metric_configs(gate_metric: str = "", threshold=None):
  # Gate on the overall slice only: some slices (items unseen in train) are
  # unreachable by construction and would fail any bound.
  overall_threshold = ([tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]
                       if threshold is not None else [])
  configs = []
  for class_name, ks, prefix in (("FullRankingRecall", RECALL_KS, "recall_at_"),
                                 ("FullRankingNdcg", NDCG_KS, "ndcg_at_")):
    for k in ks:
      name = f"{prefix}{k}"
      configs.append(tfma.MetricConfig(
          class_name=class_name, module=METRICS_MODULE,
          config=json.dumps({"k": k, "name": name}),
          per_slice_thresholds=(overall_threshold if name == gate_metric
                                else [])))
  return configs


def _slicing_specs() -> list[tfma.SlicingSpec]:
  return [tfma.SlicingSpec()] + [
      tfma.SlicingSpec(feature_keys=[name]) for name in features.SLICE_FEATURES]


def eval_config(config) -> tfma.EvalConfig:
  """Builds the EvalConfig for a `PipelineConfig`.

  For retrieval families, the model's ranks are gated; the most-popular
  baseline's ranks, scored by the same signature and metrics, are reported
  beside them ungated. Ranking families get `ranking_eval_config`.
  """
  if families.get(config.model_family).is_ranking:
    return ranking_eval_config(config)
  if config.gate.metric not in metric_names():
    raise ValueError(f"gate_metric {config.gate.metric!r} is not one of "
                     f"{metric_names()}")
  threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={"value": config.gate.lower_bound}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={"value": -config.gate.max_regression}))
  return _retrieval_eval_config(config.gate.metric, threshold)


def baseline_eval_config() -> tfma.EvalConfig:
  """The EvalConfig of a classical baseline's own Evaluator.

  The same metrics, outputs and slices as a retrieval model's, without
  thresholds: TFMA validates nothing, so the baseline is scored, never
  blessed (nor taken for the last blessed model by the next run).
  """
  return _retrieval_eval_config()


def _retrieval_eval_config(gate_metric: str = "",
                           threshold=None) -> tfma.EvalConfig:
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=serving_names.EVALUATE)],
      metrics_specs=[
          tfma.MetricsSpec(
              metrics=[tfma.MetricConfig(class_name="ExampleCount")] +
              _metric_configs(gate_metric, threshold),
              output_names=[MODEL_OUTPUT]),
          tfma.MetricsSpec(metrics=_metric_configs(),
                           output_names=[BASELINE_OUTPUT]),
      ],
      slicing_specs=_slicing_specs())


def ranking_eval_config(config) -> tfma.EvalConfig:
  """The EvalConfig of a CTR ranking family.

  AUC is gated by a lower bound and by regression against the last blessed
  model; log loss by an upper bound (the default is the loss of always
  predicting the base rate of one positive per four sampled negatives).
  """
  overall = [tfma.SlicingSpec()]
  auc_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={"value": config.gate.ranking_auc_lower_bound}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={"value": -config.gate.max_regression}))
  log_loss_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          upper_bound={"value": config.gate.ranking_log_loss_upper_bound}))
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=serving_names.EVALUATE,
          label_key=features.LABEL,
          prediction_key=serving_names.RANKER_PROBABILITY)],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="ExampleCount"),
          tfma.MetricConfig(
              class_name="AUC",
              per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                  slicing_specs=overall, threshold=auc_threshold)]),
          tfma.MetricConfig(
              class_name="BinaryCrossentropy",
              per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                  slicing_specs=overall, threshold=log_loss_threshold)]),
          tfma.MetricConfig(class_name="MeanLabel"),
          tfma.MetricConfig(class_name="MeanPrediction"),
          tfma.MetricConfig(class_name="Calibration"),
          tfma.MetricConfig(class_name="CalibrationPlot"),
      ])],
      slicing_specs=_slicing_specs())
