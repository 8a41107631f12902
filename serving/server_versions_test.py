"""Which versions the model server serves as the disk changes under it.

New versions replace old ones without dropping a request, a corrupted version
is refused until fixed, and every model under the base path is served.
`serving.server` only: TF Serving's file-system source is not under test.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import grpc

from serving.testing_grpc import (State, assert_rpc_error, local_only,
                                  open_stubs, predict_request,
                                  publish_version, serve_version_1,
                                  served_version, start_local_server,
                                  statuses, truncate_saved_model, wait_for)
from serving.testing_models import MODEL_NAME

pytestmark = local_only


def test_new_version_is_served_and_the_old_one_unloaded(model_template,
                                                         tmp_path):
  with serve_version_1(model_template, tmp_path) as handle, open_stubs(
      handle.address) as stubs:
    assert served_version(stubs) == 1

    publish_version(model_template, tmp_path / MODEL_NAME, 2)
    wait_for(lambda: served_version(stubs) == 2)

    wait_for(lambda: statuses(stubs)[1].state == State.END)
    assert statuses(stubs)[2].state == State.AVAILABLE
    assert_rpc_error(
        lambda: stubs.prediction.Predict(predict_request(version=1)),
        grpc.StatusCode.NOT_FOUND, f"Specific({MODEL_NAME}, 1)")

    # Deleting the new version rolls back to the newest one left.
    shutil.rmtree(tmp_path / MODEL_NAME / "2")
    wait_for(lambda: served_version(stubs) == 1)


def test_corrupted_version_is_refused_until_fixed(model_template, tmp_path):
  with serve_version_1(model_template, tmp_path) as handle, open_stubs(
      handle.address) as stubs:
    broken = publish_version(model_template, tmp_path / MODEL_NAME, 2,
                             edit=truncate_saved_model)
    wait_for(lambda: 2 in statuses(stubs))
    wait_for(lambda: statuses(stubs)[2].state == State.END)

    assert statuses(stubs)[2].status.error_message
    assert statuses(stubs)[1].state == State.AVAILABLE
    assert served_version(stubs) == 1

    fixed = broken / "saved_model.pb.new"
    shutil.copy(model_template / "saved_model.pb", fixed)
    os.replace(fixed, broken / "saved_model.pb")
    wait_for(lambda: served_version(stubs) == 2)


def test_concurrent_requests_across_a_version_swap_all_succeed(
    model_template, tmp_path):
  versions_seen = [[] for _ in range(8)]
  failures = []
  swapped = threading.Event()

  def send_requests(seen: list[int], address: str) -> None:
    deadline = time.monotonic() + 30
    with open_stubs(address) as stubs:
      while time.monotonic() < deadline and not (
          swapped.is_set() and len(seen) >= 50):
        try:
          seen.append(served_version(stubs))
        except grpc.RpcError as error:
          failures.append(error)

  with serve_version_1(model_template, tmp_path) as handle:
    threads = [threading.Thread(target=send_requests,
                                args=(seen, handle.address))
               for seen in versions_seen]
    for thread in threads:
      thread.start()
    wait_for(lambda: sum(map(len, versions_seen)) >= 80)
    publish_version(model_template, tmp_path / MODEL_NAME, 2)
    wait_for(lambda: any(2 in seen for seen in versions_seen))
    swapped.set()
    for thread in threads:
      thread.join(timeout=40)

  assert not failures
  assert all(len(seen) >= 50 for seen in versions_seen)
  assert {1, 2} <= {version for seen in versions_seen for version in seen}
  # One snapshot swap: once a client has seen version 2 it never sees 1.
  assert all(seen == sorted(seen) for seen in versions_seen)


def test_every_model_under_the_base_path_is_served(model_template, tmp_path):
  publish_version(model_template, tmp_path / "alpha", 1)
  publish_version(model_template, tmp_path / "beta", 3)
  with start_local_server(tmp_path) as handle, open_stubs(
      handle.address) as stubs:
    for name, version in (("alpha", 1), ("beta", 3)):
      response = stubs.prediction.Predict(
          predict_request(model_name=name), timeout=10)
      assert (response.model_spec.name, response.model_spec.version.value
              ) == (name, version)


def test_single_model_flags_and_a_base_path_that_appears_later(
    model_template, tmp_path):
  model_dir = tmp_path / "later" / MODEL_NAME
  with start_local_server(model_dir, model_name=MODEL_NAME) as handle, \
      open_stubs(handle.address) as stubs:
    assert_rpc_error(lambda: served_version(stubs), grpc.StatusCode.NOT_FOUND,
                     f"Latest({MODEL_NAME})")
    model_dir.mkdir(parents=True)
    publish_version(model_template, model_dir, 5)
    wait_for(lambda: handle.loaded_versions() == {MODEL_NAME: [5]})
    assert served_version(stubs) == 5
