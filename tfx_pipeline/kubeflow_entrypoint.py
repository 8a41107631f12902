"""The container command of every task of the compiled Kubeflow pipeline.

It is TFX's Kubeflow v2 executor entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, same
flags), run in a process that imported this project first, for three
reasons:

- TFX's own executors (StatisticsGen, ExampleValidator, Pusher, ...) import
  nothing of this project, so without it their process never registers
  s3:// with `tf.io.gfile` (`transforms.filesystems`) and cannot read an
  s3:// pipeline root;
- after a task used S3, tensorflow-io 0.37.1 aborts the process at exit
  (status 134, tensorflow/io#2039), which KFP would record as a failed task;
  `filesystems.exit_process` leaves without that teardown;
- the in-memory DirectRunner, the spec's default, reads side inputs without
  its objsize-sized cache (`beam_state_cache`).
"""

from __future__ import annotations

import runpy
from typing import Optional

from tfx_pipeline import beam_state_cache
from transforms import filesystems

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
# The container command the compiled spec gives every task, and the image's
# ENTRYPOINT.
COMMAND = ["python", "-m", "tfx_pipeline.kubeflow_entrypoint"]


def exit_status(code: Optional[object]) -> int:
  """The process status `sys.exit(code)` would give."""
  if code is None:
    return 0
  return code if isinstance(code, int) else 1


def main() -> None:
  """Runs TFX's entrypoint as `python -m` would, then exits safely."""
  beam_state_cache.disable()
  try:
    runpy.run_module(TFX_ENTRYPOINT, run_name="__main__", alter_sys=True)
    code = None
  except SystemExit as finished:
    code = finished.code
  filesystems.exit_process(exit_status(code))


if __name__ == "__main__":
  main()
