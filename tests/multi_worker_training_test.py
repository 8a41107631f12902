"""The retrieval Trainers on two local CPU workers of one
`MultiWorkerMirroredStrategy` job (`models.distribution_testing`): the
two-tower chief's validation matches one process's, and a SASRec-class job
whose worker was killed resumes from the last epoch backed up.
"""

import os
import re
import signal
import subprocess
import time

import pytest

from models import distribution
from models import distribution_testing
from models import learning_curve

# How far the two workers' kept epoch's Recall@10 may lie from one
# process's: the rows are cut otherwise (per-replica batches of half the
# rows, each replica's uniform negatives drawn apart, no partial batch), so
# the runs are not the same computation. Their kept epoch's Recall@10 here is near 0.9, and a
# third of this tolerance is the binomial noise of 400 validation users.
RECALL_TOLERANCE = 0.06
# Minutes on this 2-core machine when other work shares it.
_WORKER_TIMEOUT_S = 900


def _flags(family, model_dir, distribution_name, epochs):
  # 400 users in 8 clusters of 10 items: learnt in a few epochs.
  return ["--family", family, "--model-dir", model_dir, "--distribution",
          distribution_name, "--epochs", str(epochs), "--users", "400",
          "--clusters", "8", "--items-per-cluster", "10"]


def _finish(workers, timeout_s=_WORKER_TIMEOUT_S):
  """The workers' exit codes; a worker still running after `timeout_s` is
  killed, and the test fails."""
  try:
    for worker in workers:
      worker.wait(timeout=timeout_s)
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  return [worker.returncode for worker in workers]


def _kept_metrics(model_dir):
  curve = learning_curve.read(os.path.join(model_dir, "model_run"))
  return curve.best_point.metrics, len(curve.points)


def _assert_only_the_chief_wrote(model_dir):
  assert sorted(os.listdir(model_dir)) == ["model_run", "serving"]
  assert os.path.exists(os.path.join(model_dir, "serving", "saved_model.pb"))


def test_two_workers_match_one_process(tmp_path):
  family, epochs = "two_tower", 3
  alone, pair = str(tmp_path / "alone"), str(tmp_path / "pair")
  assert subprocess.run(
      [*distribution_testing.worker_command(),
       *_flags(family, alone, distribution.NONE, epochs)],
      env=distribution_testing.worker_environment(None), check=False,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      timeout=_WORKER_TIMEOUT_S).returncode == 0
  workers = distribution_testing.start_workers(
      2, _flags(family, pair, distribution.MULTI_WORKER, epochs),
      str(tmp_path / "logs"))
  assert _finish(workers) == [0, 0]

  (single, _), (chief, trained) = _kept_metrics(alone), _kept_metrics(pair)
  print(f"{family}: one process {single}, two workers {chief}")
  assert trained == epochs
  assert chief["recall_at_10"] == pytest.approx(single["recall_at_10"],
                                                abs=RECALL_TOLERANCE)
  # Both well above chance (10 of 80 items: 0.125): both learnt.
  assert min(chief["recall_at_10"], single["recall_at_10"]) > 0.2
  _assert_only_the_chief_wrote(pair)


def _wait_for(path, workers, timeout_s=_WORKER_TIMEOUT_S):
  deadline = time.monotonic() + timeout_s
  while not os.path.exists(path):
    assert all(worker.poll() is None for worker in workers), (
        "a worker ended before the first backup")
    assert time.monotonic() < deadline, f"no {path} in {timeout_s} s"
    time.sleep(0.1)


def _validated_epochs(log_path, family):
  with open(log_path) as log:
    return [int(epoch) for epoch in re.findall(rf"{family} epoch (\d+):",
                                               log.read())]


def test_a_sasrec_job_whose_worker_was_killed_resumes_from_its_last_epoch(
    tmp_path):
  # SASRec-class here, the two-tower above: both Trainers run as two-worker
  # jobs. SASRec is not compared with one process here: after 3 epochs on
  # this data the two workers' chief was well ahead of one process (Recall@10
  # 0.29 against 0.14 in one run), a difference not yet explained; at their
  # best epochs on the benchmark's data they match (docs/scaling.md,
  # "SASRec-class").
  family, model_dir, epochs = "sasrec", str(tmp_path / "job"), 5
  flags = _flags(family, model_dir, distribution.MULTI_WORKER, epochs)
  first = distribution_testing.start_workers(2, flags, str(tmp_path / "first"))
  # The chief's first backup is written after epoch 1.
  _wait_for(os.path.join(model_dir, "model_run", distribution.BACKUP_SUBDIR,
                         "chief", "checkpoint"), first)
  first[1].send_signal(signal.SIGKILL)
  # Its peer waits on the dead worker's collectives: the job restarts, as
  # the cluster's scheduler restarts a failed job, chief included.
  first[0].send_signal(signal.SIGKILL)
  _finish(first)
  backed_up = max(_validated_epochs(distribution_testing.worker_log(
      str(tmp_path / "first"), 0), family))
  assert backed_up < epochs, "killed after the last epoch: nothing resumed"

  second = distribution_testing.start_workers(2, flags,
                                              str(tmp_path / "second"))
  assert _finish(second) == [0, 0]
  resumed = _validated_epochs(distribution_testing.worker_log(
      str(tmp_path / "second"), 0), family)
  with open(distribution_testing.worker_log(str(tmp_path / "second"), 0)) as log:
    after = int(re.search(r"Resumed from the backup after epoch (\d+)",
                          log.read()).group(1))
  print(f"killed after epoch {backed_up} validated; resumed after {after}")
  # At most the epoch in flight is lost, and nothing restarts from epoch 1.
  assert 1 <= after <= backed_up
  assert resumed == list(range(after + 1, epochs + 1))
  curve = learning_curve.read(os.path.join(model_dir, "model_run"))
  assert [point.step for point in curve.points] == list(range(1, epochs + 1))
  # Above chance (10 of 80 items: 0.125).
  assert curve.best_point.metrics["recall_at_10"] > 0.125
  _assert_only_the_chief_wrote(model_dir)
