"""Tests for pipeline_steps (no pipeline step is run)."""

from __future__ import annotations

from benchmarks import child_process
from benchmarks import pipeline_steps
from tfx_pipeline import config as config_lib


def test_step_config_caps_the_history_only_when_asked():
  default = pipeline_steps._step_config("log", "workspace", 2)
  assert (default.examples.history_length ==
          config_lib.ExamplesConfig().history_length)
  assert default.beam_args == pipeline_steps.beam_worker_args(2)
  assert pipeline_steps._step_config("log", "workspace", 1,
                              history_length=1).examples.history_length == 1


def test_beam_worker_args_ask_for_processes():
  assert pipeline_steps.beam_worker_args(2) == [
      "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def test_measure_steps_stops_after_the_last_step_asked_for(tmp_path,
                                                          monkeypatch):
  started = []

  def fake_child(command, log_path, max_rss_bytes, timeout_s):
    started.append(command[command.index("--run-step") + 1])
    return child_process.ChildRun("ok", 0, 1.0, 100.0, 60.0, 40.0, 1.0,
                                  (0.0, 0.0), "")

  monkeypatch.setattr(child_process, "run_child", fake_child)
  monkeypatch.setattr(pipeline_steps, "_step_seconds",
                      lambda workspace, step: {step.nodes[-1]: 1.0})
  budget = child_process.Budget(max_rss_bytes=2**30, step_timeout_s=60)
  records = pipeline_steps.measure_steps(
      "log", 1000, 1, tmp_path / "workspace", budget,
      last_step=pipeline_steps.STEPS[1])
  assert started == ["ExampleGen", "StatisticsGen"]
  assert [record["step"] for record in records] == started
  pipeline_steps.measure_steps("log", 1000, 1, tmp_path / "workspace", budget)
  assert started[2:] == [step.name for step in pipeline_steps.STEPS]


def test_component_peaks_take_the_samples_inside_each_components_run(
    monkeypatch, tmp_path):
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pipeline_steps, "_component_runs", lambda workspace: [
      run_summary.ComponentRun("Transform", "complete", 10.0, 100.0),
      run_summary.ComponentRun("Trainer", "complete", 5.0, 111.0),
      run_summary.ComponentRun("Pusher", "complete", 0.5, 130.0),
      # A continuation's node taken over from the stopped run: its peak is
      # the stopped run's, not a sample of this one.
      run_summary.ComponentRun("StatisticsGen", "cached", 0.1, 99.0)])
  timeline = [(99.0, 9000.0), (100.0, 1000.0), (110.0, 1500.0),
              (110.5, 8000.0), (111.0, 2000.0), (116.0, 2500.0)]
  assert pipeline_steps._component_peaks(tmp_path, timeline) == {
      "Transform": 1500.0, "Trainer": 2500.0}
