"""Tests for BaselineGate: its decision, and its place in the KFP spec.

The end-to-end check (a model below its baseline is not pushed) runs the
pipeline in `tests/classical_families_e2e_test.py`.
"""

import json

import pytest

from data import contract
from data import synthetic
from tfx_pipeline.components import baseline_gate
from tfx_pipeline.components import blessing_record
from tfx_pipeline import config as config_lib
from tfx_pipeline import kubeflow_v2_runner


def _comparison(model_value, baseline_value, evaluator_blessed=True):
  return baseline_gate.Comparison(
      metric="recall_at_50", baseline="ease", model_value=model_value,
      baseline_value=baseline_value, evaluator_blessed=evaluator_blessed)


@pytest.mark.parametrize("model_value, blessed", [
    (0.31, True), (0.30, False), (0.29, False)])
def test_only_a_model_strictly_above_the_baseline_is_blessed(model_value,
                                                            blessed):
  comparison = _comparison(model_value, 0.30)
  assert comparison.blessed is blessed
  assert comparison.margin == pytest.approx(model_value - 0.30)


def test_a_model_the_evaluator_refused_stays_refused_above_the_baseline():
  comparison = _comparison(0.5, 0.3, evaluator_blessed=False)
  assert comparison.beats_baseline and not comparison.blessed
  assert comparison.in_words() == (
      "not blessed: model recall_at_50 0.5000 beats ease 0.3000 (margin "
      "+0.2000); the Evaluator did not bless the model")


def test_the_record_reads_back(tmp_path):
  comparison = _comparison(0.25, 0.3)
  (tmp_path / blessing_record.COMPARISON_FILE).write_text(
      json.dumps(comparison.to_json()))
  assert baseline_gate.read_comparison(str(tmp_path)) == comparison
  assert comparison.to_json()["blessed"] is False
  assert comparison.in_words() == (
      "not blessed: model recall_at_50 0.2500 does not beat ease 0.3000 "
      "(margin -0.0500)")
  assert baseline_gate.read_comparison(str(tmp_path / "none")) is None


def test_the_gate_compiles_for_kubeflow_between_evaluators_and_pusher(
    tmp_path):
  dataset_dir = str(tmp_path / "dataset")
  contract.write_dataset(synthetic.generate(n_users=5, n_items=8), dataset_dir)
  config = config_lib.PipelineConfig(workspace=str(tmp_path),
                                     dataset="contract",
                                     dataset_dir=dataset_dir)
  config.set("gate.baseline", "item_knn")
  spec = json.loads(open(kubeflow_v2_runner.compile_pipeline(
      config, str(tmp_path / "spec.json")), encoding="utf-8").read())
  tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
  gate_inputs = tasks["BaselineGate"]["inputs"]["artifacts"]
  assert gate_inputs["baseline_evaluation"]["taskOutputArtifact"][
      "producerTask"] == "Evaluator_item_knn"
  assert gate_inputs["model_blessing"]["taskOutputArtifact"][
      "producerTask"] == "Evaluator"
  # The gate's blessing is what the selection between model and baselines
  # starts from (`components.model_selector`).
  assert tasks["ModelSelector_ease"]["inputs"]["artifacts"]["model_blessing"][
      "taskOutputArtifact"]["producerTask"] == "BaselineGate"
