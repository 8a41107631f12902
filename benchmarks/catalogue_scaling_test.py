"""Tests for the catalogue scaling benchmark's helpers (no pipeline is run)."""

from __future__ import annotations

import json

import pytest

from benchmarks import catalogue_scaling
from data import synthetic


def test_points_parse_as_interactions_by_items():
  assert catalogue_scaling.parse_point("1000000x20000") == (1_000_000, 20_000)
  for text in ("1000000", "1e6x2e4", "x20000", "1000000x"):
    with pytest.raises(ValueError, match="INTERACTIONSxITEMS"):
      catalogue_scaling.parse_point(text)


def test_touched_items_counts_distinct_items_with_an_event(tmp_path):
  directory = synthetic.write_log(tmp_path, 4_000, n_items=500)
  touched = catalogue_scaling.touched_items(str(directory))
  assert 50 < touched < 500


def _point(interactions, items, wall_s, peak_rss_mib):
  return {"interactions": interactions, "items": items, "touched_items": 7,
          "status": "ok", "pushed": True, "wall_s": wall_s,
          "peak_rss_mib": peak_rss_mib,
          "components": {"Trainer": 30.0, "Pusher": 1.0},
          "component_peak_rss_mib": {"Trainer": 900.0, "Pusher": 300.0}}


def test_the_table_says_which_goals_each_point_meets():
  results = {"points": {
      "1000000x1000000": _point(1_000_000, 1_000_000, 61 * 60, 17 * 1024),
      "1000000x20000": _point(1_000_000, 20_000, 10 * 60, 4 * 1024)}}
  lines = catalogue_scaling.format_table(results).splitlines()
  assert lines[-2] == ("1,000,000 x 20,000 (7 touched): ok, pushed: True, "
                       "10.0 min wall, peak RSS 4.0 GiB (within 16)")
  assert lines[-1] == ("1,000,000 x 1,000,000 (7 touched): ok, pushed: True, "
                       "61.0 min wall, peak RSS 17.0 GiB (over 16), "
                       "61.0 min (over 60)")
  assert any("Trainer" in line and "900" in line for line in lines)


def test_plot_draws_every_point(tmp_path):
  results = {"points": {
      "1000000x20000": _point(1_000_000, 20_000, 600, 4096),
      "1000000x100000": _point(1_000_000, 100_000, 900, 6000)}}
  path = catalogue_scaling.plot(results, tmp_path / "plot.png")
  assert path.stat().st_size > 10_000


def test_merged_points_join_the_output_and_none_is_run_again(tmp_path,
                                                            monkeypatch):
  other = tmp_path / "other.json"
  other.write_text(json.dumps({
      "points": {"1000000x20000": _point(1_000_000, 20_000, 600, 4096)},
      "sessions": [{"command": "the other run"}]}))
  output = tmp_path / "merged.json"
  output.write_text(json.dumps({
      "points": {"1000000x100000": _point(1_000_000, 100_000, 900, 6000)},
      "sessions": []}))
  monkeypatch.setattr(catalogue_scaling.pipeline_steps,
                      "measure_full_pipeline",
                      lambda *args, **kwargs: pytest.fail("nothing to run"))
  assert catalogue_scaling.main([
      "--points", "1000000x20000", "1000000x100000", "--output", str(output),
      "--merge", str(other), "--data-root", str(tmp_path)]) == 0
  merged = json.loads(output.read_text())
  assert set(merged["points"]) == {"1000000x20000", "1000000x100000"}
  assert merged["sessions"][0] == {"command": "the other run"}
  assert output.with_suffix(".png").stat().st_size > 10_000


def test_set_overrides_reach_every_point_run(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setattr(catalogue_scaling.pipeline_steps, "generated_log",
                      lambda *args, **kwargs: {"dir": str(log_dir)})
  log_dir = synthetic.write_log(tmp_path / "log", 2_000, n_items=100)

  def fake_run(*args, **kwargs):
    calls.append(kwargs["settings"])
    return _point(2_000, 100, 60, 1024)
  monkeypatch.setattr(catalogue_scaling.pipeline_steps,
                      "measure_full_pipeline", fake_run)
  setting = 'beam_args=["--direct_num_workers=2"]'
  assert catalogue_scaling.main([
      "--points", "2000x100", "--set", setting,
      "--output", str(tmp_path / "out.json"),
      "--data-root", str(tmp_path)]) == 0
  assert calls == [(setting,)]


def _stopped(workspace):
  return {**_point(1_000_000, 1_000_000, 3_000, 9_000), "status": "timeout",
          "pushed": None, "workspace": workspace,
          "components": {"InteractionExampleGen": 900.0,
                         "BaselineTrainer_ease": 1_500.0},
          "component_peak_rss_mib": {"InteractionExampleGen": 4_000.0,
                                     "BaselineTrainer_ease": 9_000.0}}


def test_a_resumed_point_adds_up_both_runs():
  continued = {**_point(1_000_000, 1_000_000, 1_200, 7_000),
               "components": {"BaselineTrainer_ease": 1_500.0,
                              "Trainer": 800.0, "Pusher": 1.0},
               "component_peak_rss_mib": {"Trainer": 7_000.0}}
  point = catalogue_scaling.resumed_point(_stopped("/w/run"), continued)
  assert point["wall_s"] == 4_200 and point["peak_rss_mib"] == 9_000
  assert point["components"] == {"InteractionExampleGen": 900.0,
                                 "BaselineTrainer_ease": 1_500.0,
                                 "Trainer": 800.0, "Pusher": 1.0}
  assert point["component_peak_rss_mib"]["BaselineTrainer_ease"] == 9_000
  assert point["component_peak_rss_mib"]["Trainer"] == 7_000
  assert point["stopped_run"]["status"] == "timeout"
  assert point["pushed"] is True


def test_resume_continues_only_a_stopped_point_in_its_workspace(tmp_path,
                                                               monkeypatch):
  output = tmp_path / "out.json"
  output.write_text(json.dumps({"points": {
      "2000x100": _stopped(str(tmp_path / "pipeline_2000x100" / "run")),
      "2000x50": _point(2_000, 50, 60, 1_024)}, "sessions": []}))
  log_dir = synthetic.write_log(tmp_path / "log", 2_000, n_items=100)
  monkeypatch.setattr(catalogue_scaling.pipeline_steps, "generated_log",
                      lambda *args, **kwargs: {"dir": str(log_dir)})
  calls = []

  def fake_run(dataset_dir, size, workspace, *args, **kwargs):
    calls.append((workspace.name, kwargs["resume"], kwargs["keep_workspace"]))
    return {**_point(2_000, 100, 600, 2_048), "component_peak_rss_mib": {}}
  monkeypatch.setattr(catalogue_scaling.pipeline_steps,
                      "measure_full_pipeline", fake_run)
  assert catalogue_scaling.main([
      "--points", "2000x100", "2000x50", "--resume", "--output", str(output),
      "--data-root", str(tmp_path)]) == 0
  assert calls == [("pipeline_2000x100", True, True)]
  point = json.loads(output.read_text())["points"]["2000x100"]
  assert point["status"] == "ok" and point["wall_s"] == 3_600
