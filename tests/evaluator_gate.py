"""The pipeline's blessing gate, run on given models without a pipeline run.

`run_gate` runs the TFX Evaluator's executor (TFMA, with the eval config the
pipeline builds from a `PipelineConfig`) on a candidate model and, when
given, a baseline model standing for the last blessed one, over an Examples
directory, and reads back the blessing and which thresholds failed.
`save_evaluate_variant` turns a trained model into a stand-in candidate: the
same `evaluate` signature with its outputs rewritten (e.g. every rank
demoted, or a constant probability), so that each threshold can be seen to
reject at the cost of a TFMA run, not a pipeline run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Mapping

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import path_utils
from tfx.utils import proto_utils

from models import serving_names

EvaluateOutputs = Mapping[str, tf.Tensor]
# (serialized examples, the trained model's `evaluate` outputs) -> outputs.
Rewrite = Callable[[tf.Tensor, EvaluateOutputs], EvaluateOutputs]


@dataclasses.dataclass(frozen=True)
class GateResult:
  """What the Evaluator decided.

  Attributes:
    blessed: whether it blessed the candidate.
    failures: `(metric name, "value" | "change")` of every failed threshold
      on any slice; "change" is a threshold on the difference from the
      baseline model.
    metrics: the candidate's overall metrics by name.
  """
  blessed: bool
  failures: frozenset[tuple[str, str]]
  metrics: Mapping[str, float]


def _artifact(artifact_type, uri: str):
  artifact = artifact_type()
  artifact.uri = uri
  return artifact


def run_gate(examples_dir: str, candidate_uri: str, baseline_uri: str | None,
             eval_config: tfma.EvalConfig, output_dir: str) -> GateResult:
  """Runs the Evaluator executor as the pipeline's Evaluator component would.

  Args:
    examples_dir: an Examples artifact directory with a `Split-eval` split.
    candidate_uri: a Model artifact directory (holding `Format-Serving`).
    baseline_uri: the same for the last blessed model, or None (first run).
    eval_config: e.g. `tfx_pipeline.evaluation.eval_config(config)`.
    output_dir: where the evaluation and blessing are written.

  Returns:
    The blessing, the failed thresholds and the candidate's overall metrics.
  """
  examples = _artifact(standard_artifacts.Examples, examples_dir)
  examples.split_names = artifact_utils.encode_split_names(["eval"])
  evaluation = _artifact(standard_artifacts.ModelEvaluation,
                         os.path.join(output_dir, "evaluation"))
  blessing = _artifact(standard_artifacts.ModelBlessing,
                       os.path.join(output_dir, "blessing"))
  inputs = {specs.EXAMPLES_KEY: [examples],
            specs.MODEL_KEY: [_artifact(standard_artifacts.Model,
                                        candidate_uri)]}
  if baseline_uri:
    inputs[specs.BASELINE_MODEL_KEY] = [
        _artifact(standard_artifacts.Model, baseline_uri)]
  evaluator_executor.Executor().Do(
      inputs, {specs.EVALUATION_KEY: [evaluation],
               specs.BLESSING_KEY: [blessing]},
      {specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(eval_config),
       specs.EXAMPLE_SPLITS_KEY: json.dumps(["eval"])})
  validation = tfma.load_validation_result(evaluation.uri)
  failures = frozenset(
      (failure.metric_key.name,
       "change" if failure.metric_key.is_diff else "value")
      for per_slice in validation.metric_validations_per_slice
      for failure in per_slice.failures)
  overall = {}
  for sliced in tfma.load_metrics(evaluation.uri):
    if sliced.slice_key.single_slice_keys:
      continue
    for key_and_value in sliced.metric_keys_and_values:
      key = key_and_value.key
      if (not key.is_diff and not key.model_name.endswith("baseline")
          and key_and_value.value.HasField("double_value")):
        name = (f"{key.output_name}/{key.name}" if key.output_name
                else key.name)
        overall[name] = key_and_value.value.double_value.value
  blessed = os.path.exists(os.path.join(blessing.uri, "BLESSED"))
  if blessed != validation.validation_ok:
    raise AssertionError("the blessing disagrees with the validation result")
  return GateResult(blessed, failures, overall)


class _EvaluateVariant(tf.Module):
  """A model whose `evaluate` rewrites a trained model's `evaluate`."""

  def __init__(self, trained, rewrite: Rewrite):
    super().__init__()
    self.trained = trained
    evaluate = trained.signatures[serving_names.EVALUATE]

    @tf.function(input_signature=(
        tf.TensorSpec([None], tf.string, name=serving_names.EXAMPLES),))
    def evaluate_variant(examples):
      return rewrite(examples,
                     evaluate(**{serving_names.EXAMPLES: examples}))

    self.evaluate = evaluate_variant


def save_evaluate_variant(model_uri: str, variant_uri: str,
                          rewrite: Rewrite) -> str:
  """Saves a Model artifact directory whose `evaluate` is `rewrite` of
  `model_uri`'s; returns `variant_uri`."""
  variant = _EvaluateVariant(
      tf.saved_model.load(path_utils.serving_model_path(model_uri)), rewrite)
  tf.saved_model.save(
      variant, path_utils.serving_model_path(variant_uri),
      signatures={serving_names.EVALUATE: variant.evaluate
                  .get_concrete_function()})
  return variant_uri
