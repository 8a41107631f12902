"""Tests of the model server's command line and `serve`.

What the server answers is tested by concept beside this module:
`server_protocol_test` (TF Serving's protocol, also against a real TF
Serving), `server_versions_test` (version policy and swaps),
`server_scann_test` (`retrieve_scann`) and `request_metrics_test`; their
fixtures are in `conftest.py`, their helpers in `serving.testing_grpc`.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from serving import client
from serving import model_registry
from serving import server
from serving.testing_grpc import free_port, local_only, publish_version
from serving.testing_models import MODEL_NAME


def test_flags_map_onto_the_config():
  config = server.parse_flags([
      "--model_base_path=/models", "--port=0", "--version_policy=latest:2",
      "--file_system_poll_wait_seconds=0.5", "--max_batch_size=16"])
  assert config == server.ServerConfig(
      model_base_path="/models", port=0, poll_interval_s=0.5,
      version_policy=model_registry.VersionPolicy("latest", 2),
      max_batch_size=16)


def test_help_lists_the_flags(capsys):
  with pytest.raises(SystemExit) as exited:
    server.main(["--help"])
  assert exited.value.code == 0
  assert "--model_base_path" in capsys.readouterr().out


@local_only
def test_cli_serves_until_interrupted(model_template, tmp_path, capsys):
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  address = f"127.0.0.1:{free_port()}"

  def interrupt_once_serving():
    client.wait_until_available(address, MODEL_NAME, timeout_s=30)
    os.kill(os.getpid(), signal.SIGINT)

  interrupter = threading.Thread(target=interrupt_once_serving, daemon=True)
  interrupter.start()
  assert server.main([f"--model_base_path={tmp_path}",
                      f"--port={address.split(':')[1]}"]) == 0
  interrupter.join(timeout=10)

  out = capsys.readouterr().out
  assert f"Serving gRPC on {address}" in out
  assert f"model {MODEL_NAME}: versions [1]" in out
