"""BaselineGate: the model is pushed only if it beats a classical baseline.

With `gate.baseline` set, the pipeline hands the Pusher this component's
blessing instead of the Evaluator's. It reads the model's Evaluator output
(its blessing and evaluation) and the baseline's `Evaluator_<family>`
evaluation, both TFMA outputs over the same eval split with the same
metrics, and blesses the model only if the Evaluator blessed it AND its
`metric` on the overall slice is strictly above the baseline's: a model that
merely ties a closed-form baseline is not worth serving. A baseline that did
not fit (`components.baseline_fit`) cannot be beaten: the gate then refuses,
with the baseline's reason.

Output, a ModelBlessing like the Evaluator's (`blessed` 1 or 0, the
evaluated model's `current_model_id` and `current_model_uri`, and a BLESSED
or NOT_BLESSED file, which is all the Pusher reads), plus `comparison.json`:
the metric, both values, the margin and the decision.
"""

import dataclasses
from typing import Optional

from tfx import v1 as tfx
from tfx.components.evaluator import constants

from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import blessing_record
from tfx_pipeline import evaluation
from tfx_pipeline.report import eval_results

_BLESSED_KEY = blessing_record.BLESSED_KEY
_MODEL_ID_KEY = constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY
_MODEL_URI_KEY = constants.ARTIFACT_PROPERTY_CURRENT_MODEL_URI_KEY


@dataclasses.dataclass(frozen=True)
class Comparison:
  """The model against the baseline on the overall eval slice.

  Attributes:
    metric: the gate metric, e.g. `recall_at_50`.
    baseline: the baseline's family.
    model_value: the model's `metric`.
    baseline_value: the baseline's `metric`; None if it did not fit.
    evaluator_blessed: whether the model's Evaluator blessed it.
    baseline_failure: why the baseline did not fit, "" if it did.
  """
  metric: str
  baseline: str
  model_value: float
  baseline_value: Optional[float]
  evaluator_blessed: bool
  baseline_failure: str = ""

  @property
  def margin(self) -> Optional[float]:
    if self.baseline_value is None:
      return None
    return self.model_value - self.baseline_value

  @property
  def beats_baseline(self) -> bool:
    return self.margin is not None and self.margin > 0

  @property
  def blessed(self) -> bool:
    return self.evaluator_blessed and self.beats_baseline

  def in_words(self) -> str:
    verdict = "blessed" if self.blessed else "not blessed"
    if self.baseline_value is None:
      reasons = [f"gate.baseline={self.baseline!r} did not fit, so the model "
                 f"cannot be shown to beat it ({self.baseline_failure}); "
                 "--set gate.baseline=\"\" pushes without that comparison"]
    else:
      reasons = [f"model {self.metric} {self.model_value:.4f} "
                 f"{'beats' if self.beats_baseline else 'does not beat'} "
                 f"{self.baseline} {self.baseline_value:.4f} "
                 f"(margin {self.margin:+.4f})"]
    if not self.evaluator_blessed:
      reasons.append("the Evaluator did not bless the model")
    return f"{verdict}: " + "; ".join(reasons)

  def to_json(self) -> dict:
    return {**dataclasses.asdict(self), "margin": self.margin,
            "beats_baseline": self.beats_baseline, "blessed": self.blessed}


def overall_value(evaluation_uri: str, metric: str) -> float:
  """The model output's `metric` on the overall slice of a TFMA output.

  Raises:
    ValueError: if the output has no such value.
  """
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
  overall = eval_results.flatten_metrics(
      tfma.load_eval_result(evaluation_uri)).get((), {})
  key = f"{evaluation.MODEL_OUTPUT}/{metric}"
  if key not in overall:
    raise ValueError(f"{evaluation_uri} has no overall {key}; it has "
                     f"{sorted(overall)}")
  return overall[key]


def read_comparison(blessing_uri: str) -> Optional[Comparison]:
  """The comparison a BaselineGate wrote into its blessing, if any."""
  fields = blessing_record.read(blessing_uri)
  if fields is None:
    return None
  return Comparison(**{field.name: fields[field.name]
                       for field in dataclasses.fields(Comparison)
                       if field.name in fields})


@tfx.dsl.components.component
def BaselineGate(  # pylint: disable=invalid-name
    model_blessing: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ModelBlessing],
    model_evaluation: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ModelEvaluation],
    baseline_evaluation: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ModelBlessing],
    metric: tfx.dsl.components.Parameter[str],
    baseline: tfx.dsl.components.Parameter[str],
) -> None:
  """Blesses the model if the Evaluator did and it beats the baseline.

  Args:
    model_blessing: the model's Evaluator blessing.
    model_evaluation: the model's Evaluator output.
    baseline_evaluation: the baseline's `Evaluator_<family>` output.
    blessing: what the Pusher reads; `comparison.json` beside its marker.
    metric: the gate metric, compared on the overall slice.
    baseline: the baseline's family, for the record.
  """
  failure = baseline_fit.read_failure(baseline_evaluation.uri)
  comparison = Comparison(
      metric=metric, baseline=baseline,
      model_value=overall_value(model_evaluation.uri, metric),
      baseline_value=(None if failure else
                      overall_value(baseline_evaluation.uri, metric)),
      evaluator_blessed=(
          model_blessing.get_int_custom_property(_BLESSED_KEY) == 1),
      baseline_failure=failure.in_words() if failure else "")
  # Names the evaluated model, as the Evaluator's blessing does.
  if model_blessing.has_custom_property(_MODEL_ID_KEY):
    blessing.set_int_custom_property(
        _MODEL_ID_KEY, model_blessing.get_int_custom_property(_MODEL_ID_KEY))
    blessing.set_string_custom_property(
        _MODEL_URI_KEY,
        model_blessing.get_string_custom_property(_MODEL_URI_KEY))
  blessing_record.write(blessing, comparison.blessed, comparison.to_json())
  print(f"BaselineGate: {comparison.in_words()}", flush=True)
