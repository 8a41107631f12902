"""Tests for the baseline that replaces the resolver on open-source KFP.

Two runs of the compiled `kfp` spec against a bucket, the second gated
against the first run's push, are in `tests/kubeflow_run_test.py`.
"""

import pathlib

from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.types import standard_component_specs
from tfx.utils import path_utils

from tfx_pipeline.components import pushed_baseline

_BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def _push(push_dir: pathlib.Path, version: str, complete: bool = True
          ) -> pathlib.Path:
  """A version directory as the Pusher leaves it (saved_model.pb last)."""
  directory = push_dir / version
  (directory / "variables").mkdir(parents=True)
  (directory / "variables" / "variables.index").write_text("weights")
  (directory / "assets.extra" / "scann_index").mkdir(parents=True)
  (directory / "assets.extra" / "scann_index" / "index").write_text("index")
  if complete:
    (directory / "saved_model.pb").write_text("graph")
  return directory


def test_the_latest_complete_numbered_version_is_the_latest_push(tmp_path):
  _push(tmp_path, "900")
  newest = _push(tmp_path, "1000")
  _push(tmp_path, "1100", complete=False)  # still being copied
  (tmp_path / "9999.tmp").mkdir()
  assert pushed_baseline.latest_push(str(tmp_path)) == str(newest)


def test_nothing_pushed_is_no_push(tmp_path):
  assert pushed_baseline.latest_push(str(tmp_path / "never")) is None
  assert pushed_baseline.latest_push(str(tmp_path)) is None


def _model_artifact(uri: pathlib.Path) -> tfx.types.standard_artifacts.Model:
  model = tfx.types.standard_artifacts.Model()
  model.uri = str(uri)
  return model


def test_the_latest_push_is_copied_where_the_evaluator_reads_a_model(
    tmp_path):
  pushed = _push(tmp_path / "serving", "1700000000")
  model = _model_artifact(tmp_path / "baseline")

  pushed_baseline.LatestPushedModel.test_call(
      model=model, push_dir=str(tmp_path / "serving"))

  copy = pathlib.Path(path_utils.serving_model_path(model.uri))
  assert (copy / "saved_model.pb").read_text() == "graph"
  assert (copy / "variables" / "variables.index").read_text() == "weights"
  assert not (copy / "assets.extra").exists()
  assert pushed_baseline.has_model(model)
  assert model.get_string_custom_property(
      pushed_baseline.PUSHED_DESTINATION_KEY) == str(pushed)
  assert model.get_string_custom_property(
      pushed_baseline.PUSHED_VERSION_KEY) == "1700000000"


def test_a_first_run_finds_no_model(tmp_path):
  model = _model_artifact(tmp_path / "baseline")
  pushed_baseline.LatestPushedModel.test_call(
      model=model, push_dir=str(tmp_path / "serving"))
  assert not pushed_baseline.has_model(model)
  assert not (tmp_path / "baseline").exists()


def test_the_evaluator_runs_without_a_baseline_that_was_not_found(
    tmp_path, monkeypatch):
  seen = []
  monkeypatch.setattr(evaluator_executor.Executor, "Do",
                      lambda self, inputs, *_: seen.append(inputs[_BASELINE]))
  found, missing = (_model_artifact(tmp_path / name)
                    for name in ("found", "missing"))
  found.set_int_custom_property(pushed_baseline.FOUND_KEY, 1)
  missing.set_int_custom_property(pushed_baseline.FOUND_KEY, 0)
  executor = pushed_baseline.EvaluatorExecutor()

  executor.Do({_BASELINE: [missing]}, {}, {})
  executor.Do({_BASELINE: [found]}, {}, {})

  assert seen == [[], [found]]

