"""Tests for the pipeline configuration and its `--set` overrides."""

import pytest

from tfx_pipeline import config as config_lib


def test_set_reaches_top_level_fields_and_dotted_groups(tmp_path):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  config.set("seed", "7")
  config.set("gate.max_regression", "0.5")
  config.set("embedding_benchmark.enabled", "true")
  config.set("embedding_benchmark.seeds", "[4, 5]")
  config.set("kubeflow.image", "registry.example/vrec:1")
  assert config.seed == 7
  assert config.gate.max_regression == 0.5
  assert config.embedding_benchmark.enabled is True
  assert config.embedding_benchmark.seeds == [4, 5]
  assert config.kubeflow.image == "registry.example/vrec:1"


def test_groups_are_not_shared_between_configs(tmp_path):
  first = config_lib.PipelineConfig(workspace=str(tmp_path))
  first.set("gate.lower_bound", "0.9")
  assert config_lib.PipelineConfig(workspace=str(tmp_path)).gate.lower_bound == 0.05


@pytest.mark.parametrize("key", ["gate_lower_bound", "gate", "gate.nope",
                                 "nope.metric", "seed.value"])
def test_unknown_keys_name_the_known_ones(tmp_path, key):
  config = config_lib.PipelineConfig(workspace=str(tmp_path))
  with pytest.raises(KeyError, match="gate.lower_bound"):
    config.set(key, "1")


def test_known_keys_lists_every_leaf():
  keys = config_lib.known_keys(config_lib.PipelineConfig(workspace="/tmp/w"))
  assert {"seed", "examples.history_length", "gate.metric",
          "embedding_benchmark.baselines", "kubeflow.package_root"} <= set(keys)
  assert "gate" not in keys
