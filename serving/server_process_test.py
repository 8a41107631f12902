"""The server as a process on a bucket: SIGTERM, and an object store outage.

Each test runs `python -m serving.server` on the tiny model in a bucket of the
tests' S3 server (moto, `tests.object_store`), talks to it over gRPC and ends
it with SIGTERM, as Kubernetes does. The outages come from a proxy in front
of the S3 server that stops answering (`tests.object_store.StoreProxy`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Iterator, Optional

import grpc
import pytest

from serving import client
from serving import testing_models
from serving.testing_grpc import (POLL_INTERVAL_S, local_only, open_stubs,
                                  predict_request, retrieved, served_version,
                                  statuses, wait_for)
from serving.testing_models import MODEL_NAME
from tests import object_store
from tests.object_store import object_store_server  # noqa: F401  pylint: disable=unused-import

pytestmark = local_only

BASE = "serving"
# Starting takes a TensorFlow import and a model load from the bucket, slow
# on a busy machine.
START_TIMEOUT_S = 120
GRACE_S = 20
# The outage test's S3 client gives up on a call after 2 x 2 s, so scans
# fail within seconds; a poller that must stay blocked waits 10 minutes.
QUICK_S3_CALLS = {"S3_REQUEST_TIMEOUT_MSEC": "2000", "AWS_MAX_ATTEMPTS": "2"}
STUCK_S3_CALLS = {"S3_REQUEST_TIMEOUT_MSEC": "600000"}
SCAN_FAILURES = "vrec_serving_model_scan_failures_total"
LAST_GOOD_SCAN = "vrec_serving_model_scan_last_success_timestamp_seconds"


class ServerProcess:
  """`python -m serving.server` on a bucket, its output read on a thread,
  so that a full pipe never blocks it; killed with this process."""

  def __init__(self, env: dict[str, str], model_base_path: str, *flags: str):
    self._process = subprocess.Popen(
        [sys.executable, "-m", "tests.parent_bound", str(os.getpid()),
         "serving.server", f"--model_base_path={model_base_path}",
         "--port=0", "--metrics_port=0",
         f"--file_system_poll_wait_seconds={POLL_INTERVAL_S}",
         f"--shutdown_grace_seconds={GRACE_S}", *flags],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    self._lines: list[str] = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()
    self.address = self.wait_for_line(r"Serving gRPC on (\S+)").group(1)
    self.metrics_url = self.wait_for_line(r"Metrics on (\S+)").group(1)
    client.wait_until_available(self.address, MODEL_NAME,
                                timeout_s=START_TIMEOUT_S)

  def _read(self) -> None:
    for line in self._process.stdout:
      self._lines.append(line)

  def output(self) -> str:
    return "".join(self._lines)

  def wait_for_line(self, pattern: str,
                    timeout_s: float = START_TIMEOUT_S) -> re.Match:
    """The first output line matching `pattern`, once it is printed."""
    deadline = time.monotonic() + timeout_s
    while True:
      for line in list(self._lines):
        if match := re.search(pattern, line):
          return match
      assert self._reader.is_alive(), f"the server exited:\n{self.output()}"
      assert time.monotonic() < deadline, (
          f"no line matches {pattern!r} after {timeout_s} s:\n"
          f"{self.output()[-3000:]}")
      time.sleep(0.05)

  def metric(self, name: str) -> float:
    with urllib.request.urlopen(self.metrics_url, timeout=10) as page:
      text = page.read().decode()
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))

  def running(self) -> bool:
    return self._process.poll() is None

  def threads_that_may_take_sigterm(self) -> list[int]:
    """Ids of its threads, the main one left out, that do not block SIGTERM:
    those the kernel may hand a SIGTERM sent to the process."""
    thread_ids = []
    for task in pathlib.Path(f"/proc/{self._process.pid}/task").iterdir():
      try:
        status = (task / "status").read_text()
      except FileNotFoundError:
        continue  # The thread ended.
      blocked = int(re.search(r"^SigBlk:\s*(\w+)$", status, re.M).group(1),
                    16)
      if (int(task.name) != self._process.pid and
          not blocked >> (signal.SIGTERM - 1) & 1):
        thread_ids.append(int(task.name))
    return sorted(thread_ids)

  def terminate(self, thread_id: Optional[int] = None) -> float:
    """Sends SIGTERM to the process, or to one of its threads.

    Returns:
      The seconds until the process exited, with status 0.
    """
    sent = time.monotonic()
    if thread_id is None:
      self._process.send_signal(signal.SIGTERM)
    elif ctypes.CDLL(None, use_errno=True).tgkill(
        self._process.pid, thread_id, signal.SIGTERM) != 0:
      raise OSError(ctypes.get_errno(), f"tgkill of thread {thread_id}")
    try:
      self._process.wait(timeout=GRACE_S + 30)
    except subprocess.TimeoutExpired as error:
      raise AssertionError(f"still running {error.timeout} s after SIGTERM:"
                           f"\n{self.output()[-3000:]}") from error
    elapsed = time.monotonic() - sent
    self._reader.join(timeout=10)
    assert self._process.returncode == 0, self.output()[-3000:]
    return elapsed

  def kill(self) -> None:
    if self.running():
      self._process.kill()
      self._process.wait()


@pytest.fixture
def start_server(object_store_server) -> Iterator:
  """Starts servers on a bucket (see `ServerProcess`); kills them at the end."""
  started = []

  def start(store: object_store.ObjectStore, *flags: str,
            **env: str) -> ServerProcess:
    started.append(ServerProcess(store.env(**env), store.uri(BASE), *flags))
    return started[-1]

  yield start
  for server in started:
    server.kill()


@pytest.fixture
def store(object_store_server, model_template) -> object_store.ObjectStore:
  """A fresh bucket holding the tiny model as version 1."""
  bucket = object_store_server.create_store()
  bucket.upload_directory(model_template, BASE, MODEL_NAME, "1")
  return bucket


@pytest.fixture
def proxy(store) -> Iterator[object_store.StoreProxy]:
  with object_store.StoreProxy(store.endpoint_url) as opened:
    yield opened


def test_sigterm_exits_within_the_grace_period_while_a_scan_is_stuck(
    store, proxy, start_server):
  server = start_server(store, AWS_ENDPOINT_URL=proxy.endpoint_url,
                        **STUCK_S3_CALLS)

  proxy.stop_answering()
  # The poller's next scan sends its request and waits for the answer.
  wait_for(lambda: proxy.unanswered_requests() > 0, timeout_s=30)
  elapsed = server.terminate()

  assert elapsed < GRACE_S
  assert f"Not waiting for the scan of {store.uri(BASE)}" in server.output()


def test_a_sigterm_that_another_thread_takes_still_stops_the_server(
    store, start_server):
  """Python runs signal handlers in the main thread only; the kernel hands a
  process's SIGTERM to any thread that does not block it."""
  server = start_server(store)

  elapsed = server.terminate(
      thread_id=server.threads_that_may_take_sigterm()[-1])

  assert elapsed < GRACE_S


def test_sigterm_lets_the_request_in_flight_finish(
    object_store_server, start_server, tmp_path):
  store = object_store_server.create_store()
  entered, released = tmp_path / "entered", tmp_path / "released"
  testing_models.export_gated_model(str(tmp_path / "model"), str(entered),
                                    str(released))
  store.upload_directory(tmp_path / "model", BASE, MODEL_NAME, "1")
  # The request is held for as long as the test takes, which on a busy
  # machine could pass the default 30 s cap.
  server = start_server(store, f"--max_request_seconds={START_TIMEOUT_S}")

  with open_stubs(server.address) as stubs, \
      concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    in_flight = pool.submit(stubs.prediction.Predict, predict_request(),
                            timeout=START_TIMEOUT_S)
    wait_for(entered.exists, timeout_s=START_TIMEOUT_S)
    terminated = pool.submit(server.terminate)
    # GetModelStatus never reaches the model, so a request that comes in
    # before the server stops taking them is answered, not held at the gate.
    wait_for(lambda: _refused(server.address), timeout_s=30)
    assert server.running()
    released.touch()
    item_ids, _ = retrieved(in_flight.result())
    terminated.result()

  assert len(item_ids) == testing_models.TOP_K


def _refused(address: str) -> bool:
  """Whether a new request to `address` is refused as the server stops.

  gRPC cancels a call that reaches a stopping server, and a client finds
  the port closed once the server is gone.
  """
  with open_stubs(address) as stubs:
    try:
      statuses(stubs)
    except grpc.RpcError as error:
      assert error.code() in (grpc.StatusCode.CANCELLED,
                              grpc.StatusCode.UNAVAILABLE), error
      return True
  return False


def test_a_store_that_stops_answering_is_reported_and_picked_up_again(
    store, proxy, start_server, model_template):
  server = start_server(store, AWS_ENDPOINT_URL=proxy.endpoint_url,
                        **QUICK_S3_CALLS)
  last_good_scan = server.metric(LAST_GOOD_SCAN)

  proxy.stop_answering()
  wait_for(lambda: server.metric(SCAN_FAILURES) > 0, timeout_s=60)
  server.wait_for_line(
      rf"Cannot scan {store.uri(BASE)} for model versions; still serving "
      rf"\{{'{MODEL_NAME}': \[1\]\}}")
  store.upload_directory(model_template, BASE, MODEL_NAME, "2")
  with open_stubs(server.address) as stubs:
    assert served_version(stubs) == 1
    proxy.answer_again()
    wait_for(lambda: served_version(stubs) == 2, timeout_s=60)
  server.wait_for_line(rf"Scanning {store.uri(BASE)} for model versions "
                       "works again")
  assert server.metric(LAST_GOOD_SCAN) > last_good_scan
  server.terminate()
