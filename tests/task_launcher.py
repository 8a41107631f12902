"""Runs `python -m MODULE ARGS` commands as forks of one warm interpreter.

Test code, run inside the Kubeflow harness's stand-in image
(`kubeflow_spec_harness.TaskLauncher` starts it; it imports nothing of the
source tree). Every task of a compiled spec runs the same container command,
and most of a small task's time is that command importing TFX, Beam and
TensorFlow (about 9 s a task on two cores). This process imports the
modules a task names (`preload`) once, and then forks one process per task,
which runs the command's module as `python -m` would (`runpy`, as
`__main__`, with the task's arguments) and leaves with its exit status.

Forking after those imports is safe here because they start no thread of
Python's and initialise no TensorFlow runtime: the import order is the
container's own, and what a task creates (eager context, Beam workers, S3
clients) is created in its fork and ends with it.

Protocol, one JSON object per line: the harness writes `{"module",
"preload", "args", "log"}`; this process answers with the task's exit
status (minus the signal that killed it), and ends at end of input.
"""

import importlib
import json
import os
import runpy
import sys
import traceback
from typing import NoReturn


def _run_forked(module: str, args: list[str], log: str) -> NoReturn:
  """In the fork: the task, its output in `log`; never returns."""
  status = 1
  try:
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    sys.argv = ["-m", *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    status = 0
  except SystemExit as finished:
    code = finished.code
    status = 0 if code is None else code if isinstance(code, int) else 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
  finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # pylint: disable=protected-access


def main() -> None:
  for line in sys.stdin:
    request = json.loads(line)
    for name in request["preload"]:
      importlib.import_module(name)
    pid = os.fork()
    if pid == 0:
      _run_forked(request["module"], request["args"], request["log"])
    _, wait_status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(wait_status)), flush=True)


if __name__ == "__main__":
  main()
