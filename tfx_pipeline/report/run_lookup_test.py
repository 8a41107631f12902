"""Tests for run_lookup: which MLMD stores a reading command reads."""

import os

import pytest

from tfx_pipeline import config as config_lib
from tfx_pipeline.report import run_lookup


def _store(workspace, pipeline_name: str) -> str:
  path = config_lib.PipelineConfig(pipeline_name=pipeline_name,
                                   workspace=str(workspace)).metadata_path
  os.makedirs(os.path.dirname(path), exist_ok=True)
  open(path, "w", encoding="utf-8").close()
  return path


def test_the_named_pipeline_s_store_or_an_error_naming_it(tmp_path):
  path = _store(tmp_path, "vrec-a")
  assert run_lookup.metadata_paths(str(tmp_path), "vrec-a", True) == (
      [path], True)
  with pytest.raises(FileNotFoundError, match="no runs of vrec-b in"):
    run_lookup.metadata_paths(str(tmp_path), "vrec-b", True)


def test_a_default_name_without_runs_reads_every_pipeline(tmp_path):
  paths = sorted([_store(tmp_path, "vrec-a"), _store(tmp_path, "vrec-b")])
  assert run_lookup.metadata_paths(str(tmp_path), "vrec-movielens-100k",
                                   False) == (paths, False)
  assert run_lookup.metadata_paths(str(tmp_path), "vrec-a", False) == (
      [paths[0]], True)


def test_no_runs_at_all_is_an_error_naming_the_workspace(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"no runs in {tmp_path}"):
    run_lookup.metadata_paths(str(tmp_path), "vrec-a", False)


def test_an_evaluator_output_is_its_own_evaluation_uri(tmp_path):
  (tmp_path / "eval_config.json").write_text("{}")
  assert run_lookup.evaluation_uri(str(tmp_path), None) == str(tmp_path)


def test_a_workspace_of_several_pipelines_needs_a_pipeline_name(tmp_path):
  _store(tmp_path, "vrec-a")
  _store(tmp_path, "vrec-b")
  with pytest.raises(ValueError, match="pick one with --pipeline-name"):
    run_lookup.evaluation_uri(str(tmp_path), None)
