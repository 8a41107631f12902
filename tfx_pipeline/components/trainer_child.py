"""The Trainer's child process, started by `process_trainer.run_in_child`.

A module of its own that imports only the Trainer's executor: run as
`python -m`, `process_trainer` itself would first import `tfx.v1` for the
component class, which loads every TFX extension (Vertex AI's client among
them): about 6 of a child's 16 s of imports, paid by every Trainer and
baseline of every run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback

from tfx.components.trainer import executor as trainer_executor
from tfx.types import artifact_utils


def main(request_path: str) -> None:
  """The child: runs the Trainer's executor on the parent's request.

  An exception is written where the parent reads it. The child then ends
  without the interpreter's teardown: object storage's TensorFlow filesystem
  (tensorflow-io's S3 plugin) aborts in its static destructors at exit
  ("pure virtual method called", SIGABRT) after the Trainer's work is done
  and written. `os._exit` skips those destructors; the exit status is still
  the request's own.
  """
  with open(request_path) as request_file:
    request = json.load(request_file)
  status = 0
  try:
    trainer_executor.GenericExecutor().Do(
        artifact_utils.parse_artifact_dict(request["input_dict"]),
        artifact_utils.parse_artifact_dict(request["output_dict"]),
        request["exec_properties"])
  except Exception as error:  # pylint: disable=broad-except
    with open(request["error_path"], "w") as out:
      out.write(f"{type(error).__name__}: {error}")
    traceback.print_exc()
    status = 1
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(status)  # pylint: disable=protected-access


if __name__ == "__main__":
  main(sys.argv[1])
