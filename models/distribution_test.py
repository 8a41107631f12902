"""Tests for the choice of strategy and of who writes."""

import json

import pytest
import tensorflow as tf

from models import distribution
from models import distribution_testing
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



# Replica 0 holds rows [0, 1], replica 1 rows [2, 3, 4]; each replica's loss
# weighs its gathered rows by 1, 2, 3, ...
_GATHER_SCRIPT = """
from models import distribution
rows = strategy.experimental_distribute_values_from_function(
    lambda context: tf.constant(
        [[0.0], [1.0]] if context.replica_id_in_sync_group == 0
        else [[2.0], [3.0], [4.0]]))

@tf.function
def step(local):
  with tf.GradientTape() as tape:
    tape.watch(local)
    gathered, = distribution.gather_replicas(local)
    weights = tf.range(1.0, 6.0)[:, tf.newaxis]
    loss = tf.reduce_sum(gathered * weights)
  return gathered[:, 0], tape.gradient(loss, local)[:, 0]

gathered, gradient = strategy.run(step, args=(rows,))
print(json.dumps({
    "gathered": [t.numpy().tolist() for t in strategy.experimental_local_results(gathered)],
    "gradient": [t.numpy().tolist() for t in strategy.experimental_local_results(gradient)]}))
"""


def test_gather_replicas_puts_the_replica_s_rows_first_and_sums_gradients():
  outputs = distribution_testing.run_on_two_logical_cpus(_GATHER_SCRIPT)
  assert outputs["gathered"] == [[0, 1, 2, 3, 4], [2, 3, 4, 0, 1]]
  # A row's gradient sums its weight in both replicas' losses: row 0 is
  # weighed 1 by replica 0 and 4 by replica 1, row 2 3 and 1, ...
  assert outputs["gradient"] == [[5, 7], [4, 6, 8]]


def test_gather_replicas_without_a_strategy_returns_the_tensors():
  rows = tf.constant([[1.0], [2.0]])
  gathered, = distribution.gather_replicas(rows)
  assert gathered is rows


def test_each_input_pipeline_has_its_own_seed_and_one_keeps_the_run_s():
  seeds = [distribution.pipeline_seed(7, tf.distribute.InputContext(
      num_input_pipelines=3, input_pipeline_id=pipeline))
           for pipeline in range(3)]
  assert seeds == [21, 22, 23]
  assert distribution.pipeline_seed(7, tf.distribute.InputContext()) == 7
