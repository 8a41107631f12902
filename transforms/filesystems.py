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

The plugin's own defaults let one call to a store that stops answering block
for most of an hour (a 5-minute connect and stall timeout, and ten retries),
and with it whatever made the call: the model server's version
poller, a Pusher. `configure_s3_from_aws_env` bounds every call, unless the
environment sets its own values (`S3_CALL_BOUNDS`).

Beam 2.59's S3 file system builds a new boto3 session and client, parsing
botocore's service models again, for every file operation; finalizing one
Beam write does dozens, which took minutes per component on two cores. The
same hook makes Beam's S3 wrapper reuse one client per setting.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import types
from typing import NoReturn

from transforms import after_import

_TENSORFLOW = "tensorflow"
_PLUGIN_MODULE = "tensorflow_io"
_BEAM_S3_CLIENT_MODULE = "apache_beam.io.aws.clients.s3.boto3_client"
# The plugin's S3 client reads these once, at its first call. Its request
# timeout is a stall timeout (a transfer with no byte for that long fails),
# so large uploads and downloads are not cut short. The AWS SDK honours
# AWS_MAX_ATTEMPTS (every attempt, the first included) only in the
# "standard" retry mode, which boto3 (Beam) reads as well. A call to a store
# that does not answer fails after about 3 x 10 s.
S3_CALL_BOUNDS = {
    "S3_CONNECT_TIMEOUT_MSEC": "5000",
    "S3_REQUEST_TIMEOUT_MSEC": "10000",
    "AWS_RETRY_MODE": "standard",
    "AWS_MAX_ATTEMPTS": "3",
}


def configure_s3_from_aws_env(environ=os.environ) -> None:
  """Sets the plugin's `S3_*` variables from `AWS_ENDPOINT_URL`, and the
  `S3_CALL_BOUNDS`, each unless already set.

  Args:
    environ: the environment to read and update.
  """
  for name, value in S3_CALL_BOUNDS.items():
    environ.setdefault(name, value)
  endpoint = environ.get("AWS_ENDPOINT_URL")
  if not endpoint:
    return
  environ.setdefault("S3_ENDPOINT", endpoint)
  secure = "1" if endpoint.startswith("https://") else "0"
  environ.setdefault("S3_USE_HTTPS", secure)
  environ.setdefault("S3_VERIFY_SSL", secure)


def _register(_) -> None:
  __import__(_PLUGIN_MODULE)


class SharedBoto3Clients:
  """Stands in for `boto3` in Beam's S3 wrapper: one client per setting.

  Beam calls `boto3.session.Session().client(**settings)`; here that returns
  the client made for equal settings before (boto3 clients are thread-safe).
  """

  def __init__(self, boto3):
    self._boto3 = boto3
    self._clients = {}
    self._lock = threading.Lock()
    self.session = types.SimpleNamespace(Session=lambda: self)

  def client(self, **settings):
    key = tuple(sorted(settings.items()))
    with self._lock:
      if key not in self._clients:
        self._clients[key] = self._boto3.session.Session().client(**settings)
      return self._clients[key]


def _share_beam_s3_clients(module: types.ModuleType) -> None:
  if module.boto3 is not None and not isinstance(module.boto3,
                                                 SharedBoto3Clients):
    module.boto3 = SharedBoto3Clients(module.boto3)


def register_when_tensorflow_loads() -> None:
  """Registers tensorflow-io's file systems now or when TensorFlow is
  imported, and makes Beam's S3 wrapper share its clients once it loads."""
  configure_s3_from_aws_env()
  after_import.call_after_import(_TENSORFLOW, _register)
  after_import.call_after_import(_BEAM_S3_CLIENT_MODULE,
                                 _share_beam_s3_clients)


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
