"""Tests for how a stopped run goes on (the partial runs themselves run in
`benchmarks/pipeline_benchmark`'s tests)."""

import os

import pytest
from tfx.utils import dependency_utils

from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline import pipeline
from tfx_pipeline.report import run_summary

_DATA_STEPS = ["ImportSchemaGen", "InteractionExampleGen",
               "latest_blessed_model_resolver", "StatisticsGen",
               "ExampleValidator", "AnomaliesGate", "Transform"]


@pytest.fixture(name="config")
def _config(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  os.makedirs(config.dataset_dir)
  return config


def _every_node(config):
  return [node.id for node in pipeline.create_pipeline(config).components]


def test_a_stopped_run_goes_on_with_every_node_it_did_not_finish(
    config, monkeypatch):
  # Stopped while the Trainer ran, after the data steps and one baseline
  # had completed (a failed or running node is not finished).
  done = ["InteractionExampleGen", "StatisticsGen", "BaselineTrainer_ease"]
  monkeypatch.setattr(run_summary, "finished_components_by_run",
                      lambda path: [("first", frozenset(done))])
  resume = local_runner.resumption(config)
  assert resume.base_run_id == "first"
  assert resume.nodes == [node for node in _every_node(config)
                          if node not in done]
  assert {"Trainer", "BaselineTrainer_item_knn", "Pusher"} <= set(resume.nodes)


def test_a_resumed_run_stopped_again_goes_on_from_the_run_that_did_most(
    config, monkeypatch):
  # The 10M x 1M point's store: run 1 stopped in EASE^R's fit; run 2, a
  # partial run, took the data steps over (recorded as cached) and finished
  # both baselines, then stopped in the Trainer; run 3 resumed from the
  # newest run alone, saw no data step finished there, and was stopped in
  # ExampleGen. Going on from run 3 would redo 100 minutes of data steps.
  baselines = ["BaselineTrainer_ease", "BaselineTrainer_item_knn"]
  monkeypatch.setattr(run_summary, "finished_components_by_run",
                      lambda path: [
                          ("run-1", frozenset(_DATA_STEPS)),
                          ("run-2", frozenset(_DATA_STEPS + baselines)),
                          ("run-3", frozenset(["ImportSchemaGen"]))])
  resume = local_runner.resumption(config)
  assert resume.base_run_id == "run-2"
  assert resume.nodes == [node for node in _every_node(config)
                          if node not in _DATA_STEPS + baselines]
  assert resume.nodes[0] == "Trainer"


def test_of_runs_that_finished_as_much_the_newest_is_the_base(
    config, monkeypatch):
  monkeypatch.setattr(run_summary, "finished_components_by_run",
                      lambda path: [("old", frozenset(_DATA_STEPS)),
                                    ("new", frozenset(_DATA_STEPS))])
  assert local_runner.resumption(config).base_run_id == "new"


def test_a_store_without_runs_has_nothing_to_resume(config, monkeypatch):
  monkeypatch.setattr(run_summary, "finished_components_by_run",
                      lambda path: [])
  with pytest.raises(LookupError, match="no pipeline run"):
    local_runner.resumption(config)


def test_a_rerun_node_runs_again_with_every_node_downstream(
    config, monkeypatch):
  every_node = _every_node(config)
  monkeypatch.setattr(run_summary, "finished_components_by_run",
                      lambda path: [("done", frozenset(every_node))])
  resume = local_runner.resumption(config, rerun=["BaselineTrainer_item_knn"])
  assert resume.nodes == ["BaselineTrainer_item_knn", "Evaluator_item_knn",
                          "ModelSelector", "Pusher"]
  with pytest.raises(ValueError, match="no node .*'Trainer_typo'"):
    local_runner.resumption(config, rerun=["Trainer_typo"])


def _tfx_dependency_flags(beam_args, monkeypatch):
  """What a TFX Beam executor makes of `beam_args`; fails if it would build
  its package of TFX."""

  def build_ephemeral_package():
    raise AssertionError("TFX rebuilt its own installation as a package")

  monkeypatch.setattr(dependency_utils, "build_ephemeral_package",
                      build_ephemeral_package)
  return dependency_utils.make_beam_dependency_flags(beam_args)


@pytest.mark.parametrize("beam_args", [
    [], ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ["--runner=DirectRunner"]])
def test_a_direct_runner_run_does_not_package_tfx(beam_args, monkeypatch):
  args = local_runner.local_beam_args(beam_args)
  assert args == [*beam_args, "--setup_file=" + os.path.join(
      os.path.dirname(os.path.dirname(local_runner.__file__)), "setup.py")]
  assert _tfx_dependency_flags(args, monkeypatch) == args


@pytest.mark.parametrize("beam_args", [
    ["--runner=FlinkRunner", "--flink_master=localhost:8081"],
    ["--runner=PortableRunner", "--job_endpoint=localhost:8099"],
    ["--extra_package=/tmp/mine.tar.gz"]])
def test_other_runners_and_named_dependencies_are_left_as_given(beam_args):
  assert local_runner.local_beam_args(beam_args) == beam_args


def test_the_pipelines_beam_components_get_the_local_args(config):
  (beam_args,) = {tuple(component.executor_spec.beam_pipeline_args)
                  for component in local_runner._pipeline(config).components  # pylint: disable=protected-access
                  if hasattr(component.executor_spec, "beam_pipeline_args")}
  assert list(beam_args) == local_runner.local_beam_args(
      config.full_beam_args)
