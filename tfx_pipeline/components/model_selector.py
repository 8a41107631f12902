"""ModelSelector: the run pushes the best of its model and its baselines.

A model family is chosen before the run; which model is worth serving is
measured in it. With `baselines.select_best` (the default), the Pusher pushes
what this component selects, by one rule applied the same way to every log:

  Among the model and every classical baseline that fitted, push the one
  with the highest mean relative validation score over Recall@10, Recall@50
  and NDCG@10: each metric divided by the best candidate's on it, so that a
  candidate best on all three scores 1, and one that wins one metric by a
  hair and loses two by far does not win. The scores are every retrieval
  Trainer's, at the epoch or setting it kept, on each user's newest train
  positive held out of training (`models.validation_scores`), never the
  eval split. Ties go to the model, then to the earlier baseline. Nothing is
  pushed when the model's own gate (the Evaluator's blessing, or
  BaselineGate's) refused it. Where a candidate recorded only the metric
  its Trainer picks by (a model trained before these metrics were kept),
  the rule compares that metric alone, and says so.

The scores come from each Model artifact's `model_info.json`
(`models.trainer.VALIDATION_KEY`). A baseline that did not fit
(`components.baseline_fit`), or whose Trainer recorded no score on the
model's metric, is listed with the reason and not selected.

One ModelSelector runs per baseline, each between the best so far and that
baseline (the last one's id is `ModelSelector`), so that every input is one
artifact channel, as Kubeflow's compiler requires. A new candidate can change
the best score a metric is divided by, and with it the order of two earlier
candidates: a ModelSelector may select one the previous one did not hand
on. So every candidate's record names the artifact it would be pushed
from, and the selected one is copied from there, not from the `model` input;
every such URI is under the pipeline root, which every step reads.

Outputs:

- `selected_model`: a copy of the selected Model artifact (the model's is
  the indexed one, with its ScaNN index), with its `model_info.json`.
- `blessing`: a ModelBlessing the Pusher reads (`blessed` 1 or 0 and the
  BLESSED or NOT_BLESSED marker), with `comparison.json` beside it: the
  rule, every candidate's score or reason and its artifacts, what was
  selected, the artifact it was copied from (`selected_uri`) and why. It
  names no model id: the Evaluator's next baseline (the latest model an
  Evaluator blessed) is the same as without selection.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import tensorflow as tf
from tfx import v1 as tfx

from models import families
from models import trainer as trainer_lib
from models import validation_scores
from tfx_pipeline import artifact_files
from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import blessing_record

RULE = ("the highest mean relative validation score over Recall@10, "
        "Recall@50 and NDCG@10 (each divided by the best candidate's) among "
        "the model and the baselines that fitted, on each user's newest "
        "train positive; ties go to the model; nothing is pushed if the "
        "model's gate refused it")
# The metrics the rule weighs equally: every retrieval Trainer's validation
# scores, those the run's evaluation reports and a model must beat its
# strongest baseline on.
SELECTION_METRICS = tuple(
    field.name
    for field in dataclasses.fields(validation_scores.ValidationScores))
_BLESSED_KEY = blessing_record.BLESSED_KEY
_SELECTED_KEY = "selected"


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A model the run could push.

  Attributes:
    label: the model's label (its family, for a baseline).
    is_model: whether it is the run's model rather than a baseline.
    metric: the validation metric its score is on; "" if it has none.
    validation: its validation score; None if it cannot be selected.
    reason: why it cannot be selected; "" if it can.
    metrics: every validation metric at its kept epoch or setting; None
      where its Trainer recorded only `validation`.
    uri: the Model artifact pushed if it is selected: the model as the
      Pusher would push it (indexed, for an indexed family), a baseline's
      Trainer output; "" in a record written before candidates kept it.
    info_uri: the Model artifact holding its `model_info.json`: the model's
      Trainer output, a baseline's `uri`.
  """
  label: str
  is_model: bool
  metric: str = ""
  validation: Optional[float] = None
  reason: str = ""
  metrics: Optional[Dict[str, float]] = None
  uri: str = ""
  info_uri: str = ""


@dataclasses.dataclass(frozen=True)
class Selection:
  """Which candidate the run pushes, and why.

  Attributes:
    candidates: the model first, then the baselines.
    model_blessed: whether the model's gate blessed it.
    selected: the label pushed; None if nothing is.
    why: the decision in words.
  """
  candidates: List[Candidate]
  model_blessed: bool
  selected: Optional[str]
  why: str

  @property
  def selected_is_model(self) -> bool:
    return self.selected == self.candidates[0].label

  @property
  def selected_candidate(self) -> Optional[Candidate]:
    """The candidate pushed; None if nothing is."""
    return next((c for c in self.candidates if c.label == self.selected),
                None)

  def to_json(self) -> dict:
    chosen = self.selected_candidate
    return {"rule": RULE, "metric": self.candidates[0].metric,
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "model_blessed": self.model_blessed, "selected": self.selected,
            "selected_is_model": self.selected_is_model,
            "selected_uri": chosen.uri if chosen else None, "why": self.why}

  @classmethod
  def from_json(cls, record: dict) -> "Selection":
    return cls(candidates=[Candidate(**c) for c in record["candidates"]],
               model_blessed=record["model_blessed"],
               selected=record["selected"], why=record["why"])


def relative_scores(candidates: Sequence[Candidate]
                    ) -> Optional[Dict[str, float]]:
  """Each candidate's mean over `SELECTION_METRICS` of its score divided by
  the best candidate's on that metric (a metric every candidate scores 0 on
  counts 1 for all); None unless every candidate has all of them."""
  if not candidates or not all(
      c.metrics and all(name in c.metrics for name in SELECTION_METRICS)
      for c in candidates):
    return None
  best = {name: max(c.metrics[name] for c in candidates)
          for name in SELECTION_METRICS}
  return {c.label: sum(c.metrics[name] / best[name] if best[name] > 0 else 1.0
                       for name in SELECTION_METRICS) / len(SELECTION_METRICS)
          for c in candidates}


def comparable_candidates(candidates: Sequence[Candidate]) -> List[Candidate]:
  """The model (first) and the baselines scored on its validation metric."""
  model = candidates[0]
  return [model, *(c for c in candidates[1:] if c.validation is not None
                   and c.metric == model.metric)]


def select(model: Candidate, baselines: List[Candidate],
           model_blessed: bool) -> Selection:
  """Applies `RULE` to the model and its baselines."""
  candidates = [model, *baselines]
  if not model_blessed:
    return Selection(candidates, False, None,
                     f"{model.label} was not blessed by its gate, so nothing "
                     "is pushed")
  if model.validation is None:
    return Selection(candidates, True, model.label,
                     f"{model.label} has no validation score to compare "
                     f"({model.reason}); it is pushed as without selection")
  comparable = comparable_candidates(candidates)
  relative = relative_scores(comparable)
  if relative is not None:
    score, described = relative, "mean relative validation score"
  else:
    score = {c.label: c.validation for c in comparable}
    described = (f"validation {model.metric} (not every candidate recorded "
                 f"{', '.join(SELECTION_METRICS)})")
  # max keeps the first of equals: the model, then the earlier baseline.
  best = max(comparable, key=lambda c: score[c.label])
  margin = ", ".join(f"{c.label} {score[c.label]:.4f}"
                     for c in comparable if c is not best)
  return Selection(candidates, True, best.label,
                   f"{best.label} has the highest {described}: "
                   f"{score[best.label]:.4f}" + (f" (against {margin})"
                                                 if margin else ""))


def candidate(model: tfx.types.standard_artifacts.Model, is_model: bool,
              trained_model: Optional[tfx.types.standard_artifacts.Model] = None
              ) -> Candidate:
  """A Model artifact as a candidate, from its Trainer's `model_info.json`.

  Args:
    model: the artifact pushed if the candidate is selected.
    is_model: whether it is the run's model rather than a baseline.
    trained_model: the Trainer output holding its `model_info.json` and fit
      failure, where that is not `model` (the model's, when indexed).
  """
  trained_model = trained_model or model
  uris = {"uri": model.uri, "info_uri": trained_model.uri}
  info = trainer_lib.read_model_info(trained_model.uri)
  failure = baseline_fit.read_failure(trained_model.uri)
  label = (info.get(families.LABEL_KEY) or info.get(families.FAMILY_KEY)
           or (failure.family if failure
               else os.path.basename(trained_model.uri)))
  if failure:
    return Candidate(label, is_model, reason=f"did not fit: {failure.reason}",
                     **uris)
  validation = info.get(trainer_lib.VALIDATION_KEY)
  if not validation:
    return Candidate(label, is_model,
                     reason="its Trainer recorded no validation score", **uris)
  return Candidate(label, is_model, validation["metric"],
                   float(validation["value"]),
                   metrics=validation.get("metrics"), **uris)


def read_selection(blessing_uri: str) -> Optional[Selection]:
  """The selection a ModelSelector wrote into its blessing, if any.

  A BaselineGate's blessing holds a `comparison.json` of its own, without
  candidates: that is no selection.
  """
  fields = blessing_record.read(blessing_uri)
  return (Selection.from_json(fields) if fields and "candidates" in fields
          else None)


def _handed_on(earlier: Selection, model: tfx.types.standard_artifacts.Model,
               trained_model: tfx.types.standard_artifacts.Model
               ) -> List[Candidate]:
  """The previous ModelSelector's candidates, each with its artifacts.

  A record written before candidates kept their URIs names none; its pick is
  still known: the `model` and `trained_model` it handed on.
  """
  return [dataclasses.replace(c, uri=model.uri, info_uri=trained_model.uri)
          if c.label == earlier.selected and not c.uri else c
          for c in earlier.candidates]


def _copy_selected(chosen: Candidate,
                   selected_model: tfx.types.standard_artifacts.Model) -> None:
  """Copies the chosen candidate's artifact and its `model_info.json`.

  Raises:
    ValueError: where the record it came from names no artifact for it.
  """
  if not chosen.uri:
    raise ValueError(
        f"{chosen.label} is selected, but the previous ModelSelector's "
        "comparison.json, written before candidates kept their artifact "
        "URIs, names none for it: rerun the pipeline without its cache "
        "(`--no-cache`)")
  artifact_files.copy_tree(chosen.uri, selected_model.uri)
  tf.io.gfile.copy(
      os.path.join(chosen.info_uri, trainer_lib.MODEL_INFO_FILE),
      os.path.join(selected_model.uri, trainer_lib.MODEL_INFO_FILE),
      overwrite=True)


@tfx.dsl.components.component
def ModelSelector(  # pylint: disable=invalid-name
    model: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Model],
    trained_model: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Model],
    model_blessing: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ModelBlessing],
    baseline_model: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Model],
    selected_model: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Model],
    blessing: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ModelBlessing],
) -> None:
  """Selects between the best so far and one more baseline, by `RULE`.

  The pipeline chains one ModelSelector per baseline (Kubeflow's compiler
  takes one artifact channel per input): the first gets the model and its
  gate's blessing, each next one the previous one's outputs, whose
  `comparison.json` carries the candidates so far with their artifacts.
  Ties keep the earlier candidate, the model first. The selected candidate
  is copied from the artifact its record names, which need not be `model`.

  Args:
    model: the best so far as the Pusher would push it: the model (indexed,
      for an indexed family), or the previous ModelSelector's selection.
    trained_model: where the model's `model_info.json` is: the Trainer's
      output, or `model` itself after the first ModelSelector.
    model_blessing: the model's gate (the Evaluator's or BaselineGate's
      blessing), or the previous ModelSelector's.
    baseline_model: one classical baseline's Trainer output.
    selected_model: receives a copy of the selected model.
    blessing: what the Pusher (or the next ModelSelector) reads;
      `comparison.json` beside its marker.
  """
  earlier = read_selection(model_blessing.uri)
  candidates = (_handed_on(earlier, model, trained_model) if earlier
                else [candidate(model, True, trained_model=trained_model)])
  challenger = candidate(baseline_model, is_model=False)
  selection = select(candidates[0], [*candidates[1:], challenger],
                     model_blessing.get_int_custom_property(_BLESSED_KEY) == 1)
  chosen = selection.selected_candidate
  if chosen is not None:
    _copy_selected(chosen, selected_model)
  blessing.set_string_custom_property(_SELECTED_KEY, selection.selected or "")
  blessing_record.write(blessing, chosen is not None, selection.to_json())
  print(f"ModelSelector: {selection.why}"
        + (f"; copied from {chosen.uri}" if chosen else ""), flush=True)
