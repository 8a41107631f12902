"""Tests for ModelSelector: the rule, the records it reads, and its outputs.

End to end, a run that pushes a baseline because it wins on validation is in
`tests/classical_families_e2e_test.py`.
"""

import json
import os

import pytest
from tfx import v1 as tfx
from tfx.components.evaluator import constants

from models import trainer as trainer_lib
from tfx_pipeline.components import baseline_fit
from tfx_pipeline.components import baseline_gate
from tfx_pipeline.components import blessing_record
from tfx_pipeline.components import model_selector

_METRIC = "recall_at_50"


def _model(value, label="two_tower"):
  return model_selector.Candidate(label, True, _METRIC, value)


def _baseline(value, label="ease", metric=_METRIC):
  return model_selector.Candidate(label, False, metric, value)


@pytest.mark.parametrize("baseline_value, selected", [
    (0.29, "two_tower"), (0.30, "two_tower"), (0.31, "ease")])
def test_the_highest_validation_score_is_selected_and_ties_go_to_the_model(
    baseline_value, selected):
  selection = model_selector.select(_model(0.30), [_baseline(baseline_value)],
                                    model_blessed=True)
  assert selection.selected == selected
  assert selection.selected_is_model is (selected == "two_tower")


def test_the_best_of_several_baselines_is_selected_earlier_first_on_ties():
  selection = model_selector.select(
      _model(0.30), [_baseline(0.32, "ease"), _baseline(0.32, "item_knn")],
      model_blessed=True)
  assert selection.selected == "ease"
  assert selection.why == ("ease has the highest validation recall_at_50 "
                           "(not every candidate recorded recall_at_10, "
                           "recall_at_50, ndcg_at_10): 0.3200 (against "
                           "two_tower 0.3000, item_knn 0.3200)")


def _scored(label, recall_at_10, recall_at_50, ndcg_at_10, is_model=False):
  return model_selector.Candidate(
      label, is_model, _METRIC, recall_at_50,
      metrics={"recall_at_10": recall_at_10, "recall_at_50": recall_at_50,
               "ndcg_at_10": ndcg_at_10})


def test_relative_scores_divide_each_metric_by_the_best_candidates():
  scores = model_selector.relative_scores([
      _scored("sasrec", 0.10, 0.20, 0.05, is_model=True),
      _scored("ease", 0.05, 0.25, 0.05)])
  assert scores == pytest.approx({"sasrec": (1.0 + 0.8 + 1.0) / 3,
                                  "ease": (0.5 + 1.0 + 1.0) / 3})
  # A metric nobody scores on counts 1 for everybody, not a division by 0.
  assert model_selector.relative_scores([
      _scored("sasrec", 0.0, 0.2, 0.0, is_model=True),
      _scored("ease", 0.0, 0.1, 0.0)]) == pytest.approx(
          {"sasrec": 1.0, "ease": (1.0 + 0.5 + 1.0) / 3})


def test_a_higher_recall_at_50_alone_does_not_win_against_the_other_two():
  # EASE^R wins Recall@50 by 2% and loses Recall@10 and NDCG@10 by 30%: the
  # Recall@50-only rule would push it.
  model = _scored("sasrec", 0.10, 0.245, 0.050, is_model=True)
  ease = _scored("ease", 0.07, 0.250, 0.035)
  selection = model_selector.select(model, [ease], model_blessed=True)
  assert selection.selected == "sasrec"
  assert selection.why == (
      "sasrec has the highest mean relative validation score: 0.9933 "
      "(against ease 0.8000)")


def test_a_baseline_better_on_every_metric_is_selected():
  model = _scored("sasrec", 0.10, 0.24, 0.05, is_model=True)
  ease = _scored("ease", 0.11, 0.25, 0.06)
  knn = _scored("item_knn", 0.09, 0.26, 0.04)
  selection = model_selector.select(model, [ease, knn], model_blessed=True)
  assert selection.selected == "ease"


def test_one_candidate_without_every_metric_falls_back_to_the_trainers_metric():
  model = _scored("sasrec", 0.10, 0.24, 0.05, is_model=True)
  selection = model_selector.select(model, [_baseline(0.25)],
                                    model_blessed=True)
  assert selection.selected == "ease"
  assert "not every candidate recorded" in selection.why


def test_nothing_is_pushed_when_the_models_gate_refused_it():
  selection = model_selector.select(_model(0.30), [_baseline(0.5)],
                                    model_blessed=False)
  assert selection.selected is None
  assert "not blessed" in selection.why


def test_a_baseline_without_a_score_on_the_models_metric_is_never_selected():
  failed = model_selector.Candidate("ease", False, reason="did not fit: oom")
  other_metric = _baseline(0.9, "item_knn", metric="ndcg_at_10")
  selection = model_selector.select(_model(0.1), [failed, other_metric],
                                    model_blessed=True)
  assert selection.selected == "two_tower"


def test_a_model_without_a_score_is_pushed_as_without_selection():
  model = model_selector.Candidate("two_tower", True, reason="no curve")
  selection = model_selector.select(model, [_baseline(0.5)],
                                    model_blessed=True)
  assert selection.selected == "two_tower"
  assert "no validation score" in selection.why


def _artifact(root, name, info=None, failure=None):
  model = tfx.types.standard_artifacts.Model()
  model.uri = os.path.join(root, name)
  os.makedirs(os.path.join(model.uri, "Format-Serving"))
  with open(os.path.join(model.uri, "Format-Serving", "saved_model.pb"),
            "w") as out:
    out.write(name)
  if info is not None:
    with open(os.path.join(model.uri, trainer_lib.MODEL_INFO_FILE), "w") as out:
      json.dump(info, out)
  if failure is not None:
    baseline_fit.write_failure(model.uri, failure)
  return model


def _info(family, value, metrics=None):
  return {"model_family": family, "label": family,
          trainer_lib.VALIDATION_KEY: {"metric": _METRIC, "value": value,
                                       "metrics": metrics}}


def test_candidates_are_read_from_model_info_and_fit_failures(tmp_path):
  metrics = {"recall_at_10": 0.1, "recall_at_50": 0.25, "ndcg_at_10": 0.05}
  trained = _artifact(str(tmp_path), "m", _info("sasrec", 0.25, metrics))
  indexed = _artifact(str(tmp_path), "indexed")
  scored = model_selector.candidate(indexed, True, trained_model=trained)
  assert scored == model_selector.Candidate(
      "sasrec", True, _METRIC, 0.25, metrics=metrics, uri=indexed.uri,
      info_uri=trained.uri)
  failure = baseline_fit.FitFailure("ease", "killed by signal 11", -11, 4096.0,
                                    "--set ...")
  failed = model_selector.candidate(
      _artifact(str(tmp_path), "f", failure=failure), is_model=False)
  assert (failed.label, failed.validation) == ("ease", None)
  assert failed.reason == "did not fit: killed by signal 11"


def test_a_baseline_gates_comparison_is_no_selection(tmp_path):
  comparison = baseline_gate.Comparison("recall_at_50", "ease", 0.3, 0.2, True)
  (tmp_path / blessing_record.COMPARISON_FILE).write_text(
      json.dumps(comparison.to_json()))
  assert model_selector.read_selection(str(tmp_path)) is None


def _run_selector(root, model, blessing_in, baseline, trained_model=None):
  """One ModelSelector execution; `trained_model` defaults to `model`, as
  after the first selector of a chain."""
  selected = tfx.types.standard_artifacts.Model()
  selected.uri = os.path.join(root, "selected")
  blessing = tfx.types.standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(root, "blessing")
  model_selector.ModelSelector.EXECUTOR_SPEC.executor_class._FUNCTION(  # pylint: disable=protected-access
      model=model, trained_model=trained_model or model,
      model_blessing=blessing_in, baseline_model=baseline,
      selected_model=selected, blessing=blessing)
  return selected, blessing


def _pushed_export(model):
  """Which model's SavedModel `model` holds (`_artifact` writes its name)."""
  with open(os.path.join(model.uri, "Format-Serving",
                         "saved_model.pb")) as export:
    return export.read()


def _blessing(root, blessed):
  blessing = tfx.types.standard_artifacts.ModelBlessing()
  blessing.uri = os.path.join(root, "evaluator_blessing")
  os.makedirs(blessing.uri)
  blessing.set_int_custom_property(constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                   int(blessed))
  return blessing


def _run_two_selectors(root, model, first_baseline, last_baseline,
                       trained_model=None, rewrite_first_record=None):
  """A chain of two: the model (blessed) against `first_baseline`, then that
  selection against `last_baseline`; `rewrite_first_record` changes the
  first one's blessing before the last one reads it.

  Returns:
    The first selector's selected model and blessing, then the last one's.
  """
  first_model, first_blessing = _run_selector(
      os.path.join(root, "first"), model, _blessing(root, True),
      first_baseline, trained_model=trained_model)
  if rewrite_first_record:
    rewrite_first_record(first_blessing)
  return (first_model, first_blessing,
          *_run_selector(os.path.join(root, "last"), first_model,
                         first_blessing, last_baseline))


def _ease_ahead_on_recall_at_50(root):
  """The model's Trainer output, ease's and item_knn's; ease scores best."""
  return (_artifact(root, "model", _info("two_tower", 0.30)),
          _artifact(root, "ease", _info("ease", 0.35)),
          _artifact(root, "knn", _info("item_knn", 0.33)))


def test_two_chained_selectors_push_the_winning_baseline_with_every_reason(
    tmp_path):
  root = str(tmp_path)
  _, _, selected, blessing = _run_two_selectors(
      root, *_ease_ahead_on_recall_at_50(root))
  assert _pushed_export(selected) == "ease"
  assert trainer_lib.read_model_info(selected.uri)["model_family"] == "ease"
  assert os.path.exists(os.path.join(blessing.uri, constants.BLESSED_FILE_NAME))
  assert blessing.get_int_custom_property(
      constants.ARTIFACT_PROPERTY_BLESSED_KEY) == 1
  selection = model_selector.read_selection(blessing.uri)
  assert [c.label for c in selection.candidates] == [
      "two_tower", "ease", "item_knn"]
  assert selection.selected == "ease" and not selection.selected_is_model


def _flipping_candidates(root):
  """The model's Trainer output, ease's and item_knn's, scored so that
  item_knn's arrival puts ease ahead of the model (see the test below)."""
  def scored(name, family, recall_at_10, recall_at_50, ndcg_at_10):
    return _artifact(root, name, _info(family, recall_at_50, {
        "recall_at_10": recall_at_10, "recall_at_50": recall_at_50,
        "ndcg_at_10": ndcg_at_10}))
  return (scored("trained", "two_tower", 1.0, 0.7, 0.5),
          scored("ease", "ease", 0.6, 1.0, 0.5),
          scored("knn", "item_knn", 3.0, 0.1, 0.5))


def test_the_last_selector_copies_an_earlier_baseline_that_overtakes_its_pick(
    tmp_path):
  # Relative scores divide by the best candidate's: item_knn's Recall@10
  # shrinks the model's lead there, so the model, ahead of ease in the first
  # selector (0.90 to 0.87), falls behind it in the last (0.68 to 0.73):
  # the last must copy ease, which the first one did not hand on.
  root = str(tmp_path)
  trained, ease, knn = _flipping_candidates(root)
  indexed = _artifact(root, "two_tower_indexed")
  first_model, first_blessing, selected, blessing = _run_two_selectors(
      root, indexed, ease, knn, trained_model=trained)
  assert model_selector.read_selection(
      first_blessing.uri).selected == "two_tower"
  assert _pushed_export(first_model) == "two_tower_indexed"
  assert blessing_record.read(first_blessing.uri)["selected_uri"] == indexed.uri
  assert model_selector.read_selection(blessing.uri).selected == "ease"
  assert _pushed_export(selected) == "ease"
  assert trainer_lib.read_model_info(selected.uri)["model_family"] == "ease"
  assert blessing_record.read(blessing.uri)["selected_uri"] == ease.uri


def _forget_uris(blessing):
  """Rewrites a ModelSelector's record as written before candidates kept
  their artifact URIs."""
  record = blessing_record.read(blessing.uri)
  del record["selected_uri"]
  for candidate in record["candidates"]:
    del candidate["uri"], candidate["info_uri"]
  with open(os.path.join(blessing.uri, blessing_record.COMPARISON_FILE),
            "w") as out:
    json.dump(record, out)


def test_an_older_records_pick_is_copied_from_the_model_it_handed_on(
    tmp_path):
  root = str(tmp_path)
  first_model, _, selected, blessing = _run_two_selectors(
      root, *_ease_ahead_on_recall_at_50(root),
      rewrite_first_record=_forget_uris)
  assert _pushed_export(selected) == "ease"
  assert blessing_record.read(blessing.uri)["selected_uri"] == first_model.uri


def test_an_older_record_without_the_winners_artifact_is_refused(tmp_path):
  root = str(tmp_path)
  with pytest.raises(ValueError, match="ease is selected, but .* names none"):
    _run_two_selectors(root, *_flipping_candidates(root),
                       rewrite_first_record=_forget_uris)


def test_a_refused_model_leaves_nothing_to_push(tmp_path):
  root = str(tmp_path)
  model = _artifact(root, "model", _info("two_tower", 0.30))
  ease = _artifact(root, "ease", _info("ease", 0.35))
  selected, blessing = _run_selector(root, model, _blessing(root, False), ease)
  assert os.path.exists(os.path.join(blessing.uri,
                                     constants.NOT_BLESSED_FILE_NAME))
  assert not os.path.exists(selected.uri)
