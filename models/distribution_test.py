"""Tests for the choice of strategy and of who writes."""

import json

import pytest
import tensorflow as tf

from models import distribution
from models import families

MULTI_WORKER = {families.DISTRIBUTION_KEY: distribution.MULTI_WORKER}


def _task(monkeypatch, task_type, index, cluster=("worker", "worker")):
  hosts = {}
  for kind in cluster:
    hosts.setdefault(kind, []).append(f"localhost:{1000 + len(hosts)}")
  monkeypatch.setenv(distribution.TF_CONFIG, json.dumps(
      {"cluster": hosts, "task": {"type": task_type, "index": index}}))


def test_no_strategy_unless_the_custom_config_names_one():
  assert distribution.strategy_name({}) == distribution.NONE
  assert distribution.strategy_name(None) == distribution.NONE
  assert distribution.create(distribution.NONE) is None
  with pytest.raises(ValueError, match="use one of"):
    distribution.strategy_name({families.DISTRIBUTION_KEY: "horovod"})


def test_mirrored_on_a_cpu_machine_is_one_replica():
  strategy = distribution.create(distribution.MIRRORED)
  assert isinstance(strategy, tf.distribute.MirroredStrategy)
  assert strategy.num_replicas_in_sync == 1


@pytest.mark.parametrize("task_type, index, cluster, chief", [
    ("worker", 0, ("worker", "worker"), True),
    ("worker", 1, ("worker", "worker"), False),
    ("chief", 0, ("chief", "worker"), True),
    ("worker", 0, ("chief", "worker"), False),
])
def test_the_chief_is_tf_config_s_chief_else_worker_0(
    monkeypatch, task_type, index, cluster, chief):
  _task(monkeypatch, task_type, index, cluster)
  assert distribution.is_chief(MULTI_WORKER) is chief
  # Without the multi-worker strategy every process is on its own.
  assert distribution.is_chief({})


def test_only_the_chief_writes_where_others_read(monkeypatch, tmp_path):
  target = str(tmp_path / "serving")
  _task(monkeypatch, "worker", 0)
  assert distribution.write_dir(target, MULTI_WORKER) == target
  _task(monkeypatch, "worker", 1)
  written = distribution.write_dir(target, MULTI_WORKER)
  assert written == f"{target}_workertemp_worker_1"
  tf.io.gfile.makedirs(written)
  distribution.remove_worker_dir(target, MULTI_WORKER)
  assert not tf.io.gfile.exists(written)


def test_the_backup_is_under_the_model_run_unless_configured(tmp_path):
  fn_args = type("FnArgs", (), dict(custom_config={},
                                    model_run_dir=str(tmp_path)))()
  assert distribution.backup_dir(fn_args) == str(tmp_path / "backup")
  fn_args.custom_config = {families.BACKUP_DIR_KEY: "gs://b/backup"}
  assert distribution.backup_dir(fn_args) == "gs://b/backup"

