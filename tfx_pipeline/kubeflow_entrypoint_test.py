"""The Kubeflow container command runs TFX's entrypoint, with the in-memory
runner's side-input cache off, and exits with its status."""

import importlib.util
import runpy

from apache_beam.runners.portability.fn_api_runner import worker_handlers
import pytest

from tfx_pipeline import kubeflow_entrypoint


@pytest.mark.parametrize("code, status", [(None, 0), (0, 0), (3, 3),
                                          ("usage: ...", 1)])
def test_exits_with_the_status_of_tfx_entrypoint(monkeypatch, code, status):
  ran, exited = [], []
  monkeypatch.setattr(worker_handlers, "STATE_CACHE_SIZE_MB", 100)

  def run_module(name, run_name, alter_sys):
    # The in-memory runner's side-input cache is off before TFX runs.
    ran.append((name, run_name, alter_sys,
                worker_handlers.STATE_CACHE_SIZE_MB))
    raise SystemExit(code)

  monkeypatch.setattr(runpy, "run_module", run_module)
  monkeypatch.setattr(kubeflow_entrypoint.filesystems, "exit_process",
                      exited.append)
  kubeflow_entrypoint.main()
  assert ran == [(kubeflow_entrypoint.TFX_ENTRYPOINT, "__main__", True, 0)]
  assert exited == [status]


def test_command_names_this_module_and_tfx_entrypoint_exists():
  assert kubeflow_entrypoint.COMMAND[-1] == kubeflow_entrypoint.__name__
  assert importlib.util.find_spec(kubeflow_entrypoint.TFX_ENTRYPOINT)
