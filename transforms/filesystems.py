"""Object storage for TensorFlow: s3:// in `tf.io.gfile`, in every process.

TensorFlow >= 2.6 has no S3 file system of its own; tensorflow-io's plugin
adds it to `tf.io.gfile`, and so to TFX, TF Transform, TFMA and SavedModel,
but only in a process that has imported `tensorflow_io`. The package's
`__init__` calls `register_when_tensorflow_loads`, so every process of the
project (the CLI, the Trainer, Beam workers, the server) registers it the
moment it loads TensorFlow, and the light commands that never load
TensorFlow do not pay for it. (GCS needs nothing: TensorFlow's own
tensorflow-io-gcs-filesystem serves gs://.)

One set of settings serves every client: the standard AWS variables, which
s3fs (`data.storage`) and boto3 (Beam) read; `configure_s3_from_aws_env`
copies the endpoint into the names the plugin reads (`S3_ENDPOINT`,
`S3_USE_HTTPS`, `S3_VERIFY_SSL`).
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import os
import sys
from typing import NoReturn

_TENSORFLOW = "tensorflow"
_PLUGIN_MODULE = "tensorflow_io"


def configure_s3_from_aws_env(environ=os.environ) -> None:
  """Sets the plugin's `S3_*` variables from `AWS_ENDPOINT_URL`, unless set.

  Args:
    environ: the environment to read and update.
  """
  endpoint = environ.get("AWS_ENDPOINT_URL")
  if not endpoint:
    return
  environ.setdefault("S3_ENDPOINT", endpoint)
  secure = "1" if endpoint.startswith("https://") else "0"
  environ.setdefault("S3_USE_HTTPS", secure)
  environ.setdefault("S3_VERIFY_SSL", secure)


def _register() -> None:
  __import__(_PLUGIN_MODULE)


class _RegisterAfterTensorFlow(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` as usual, then imports the plugin after it has loaded."""

  def find_spec(self, fullname, path, target=None):  # pylint: disable=unused-argument
    if fullname != _TENSORFLOW:
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(fullname)
    load_tensorflow = spec.loader.exec_module

    def load_then_register(module):
      load_tensorflow(module)
      _register()

    spec.loader.exec_module = load_then_register
    return spec


def register_when_tensorflow_loads() -> None:
  """Registers tensorflow-io's file systems now or when TensorFlow is imported."""
  configure_s3_from_aws_env()
  if _TENSORFLOW in sys.modules:
    _register()
  elif not any(isinstance(finder, _RegisterAfterTensorFlow)
               for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTensorFlow())


def exit_process(code: int) -> NoReturn:
  """Ends the process with `code`, safely after TensorFlow used S3.

  tensorflow-io 0.37.1 (the release built for TF 2.16) aborts a process that
  used its S3 client while C++ static objects are destroyed at exit ("pure
  virtual method called", status 134; tensorflow/io#2039, fixed after that
  release). Once the plugin is loaded this runs Python's exit handlers,
  flushes the output and leaves without that native teardown; otherwise it
  is `sys.exit(code)`.

  Args:
    code: the exit status.
  """
  if _PLUGIN_MODULE not in sys.modules:
    sys.exit(code)
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access
