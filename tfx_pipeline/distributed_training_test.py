"""Tests for how the pipeline asks for the Trainer's workers and GPUs."""

import pytest

from tfx_pipeline import config as config_lib
from tfx_pipeline import distributed_training


@pytest.mark.parametrize("workers, gpus, strategy, on_vertex", [
    (1, 0, "none", False), (1, 1, "none", True), (1, 4, "mirrored", True),
    (3, 0, "multi_worker", True), (3, 2, "multi_worker", True)])
def test_the_strategy_follows_the_workers_and_gpus(workers, gpus, strategy,
                                                   on_vertex):
  training = config_lib.TrainingConfig(workers=workers, gpus_per_worker=gpus)
  assert distributed_training.strategy(training) == strategy
  assert distributed_training.on_vertex(training) is on_vertex
  assert distributed_training.strategy_config(training) == (
      {} if strategy == "none" else {"distribution": strategy})


def test_one_worker_without_gpus_is_one_cpu_pool():
  assert distributed_training.worker_pool_specs(
      config_lib.TrainingConfig(machine_type="n1-standard-4"), "image") == [
          {"machine_spec": {"machine_type": "n1-standard-4"},
           "replica_count": 1, "container_spec": {"image_uri": "image"}}]


def test_kfp_asks_one_trainer_for_its_gpus():
  assert distributed_training.gpu_resources(
      config_lib.TrainingConfig()) is None
  assert distributed_training.gpu_resources(
      config_lib.TrainingConfig(gpus_per_worker=2)) == {
          "accelerator": {"type": "nvidia.com/gpu", "count": "2"}}
  with pytest.raises(ValueError, match="vertex target"):
    distributed_training.gpu_resources(config_lib.TrainingConfig(workers=2))
