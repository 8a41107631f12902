"""A local model server that speaks TF Serving's gRPC protocol.

It serves every model under a base path laid out as TF Serving expects,
`<base>/<model_name>/<version>/` holding plain-TF SavedModels, and implements
`PredictionService` (Predict, GetModelMetadata) and `ModelService`
(GetModelStatus) with TF Serving's status codes and messages, so clients can
switch between it and `tensorflow_model_server` by changing the address.

A background poller keeps the served versions in line with the disk and the
version policy; the base path may be in object storage (`s3://bucket/serving`,
through `tf.io.gfile`), which is polled the same way, as TF Serving does. The parts, each usable on its own:

- `serving.model_registry`: version policy, loading and unloading;
- `serving.servables`: a loaded version and its signatures, including the
  `retrieve_scann` signature added when a version holds a ScaNN index;
- `serving.rpc_handlers`: what each RPC answers, without gRPC;
- `serving.errors`: failures as gRPC status codes, and request deadlines;
- `serving.request_metrics`: Prometheus request counts and latencies;
- this module: the gRPC services, `serve` and the CLI.

Run `python -m serving.server --help` for the flags.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import signal
import threading
import time
from typing import Callable, Mapping, Optional

import grpc
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import errors
from serving import model_registry
from serving import request_metrics
from serving import rpc_handlers
from transforms import filesystems

_LOG = logging.getLogger(__name__)


# -------------------------------------------------------------- services ---


class _Responder:
  """Turns request handlers into gRPC answers, errors and metrics included."""

  def __init__(self, registry: model_registry.ModelRegistry,
               metrics: Optional[request_metrics.RequestMetrics],
               max_request_seconds: float):
    self._registry = registry
    self._metrics = metrics
    self._max_request_seconds = max_request_seconds

  def answer(self, context: grpc.ServicerContext, method: str,
             model_spec: model_pb2.ModelSpec,
             handler: Callable[[errors.Deadline], object]):
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
      deadline = errors.Deadline.of(context, self._max_request_seconds)
      # A request that waited in the queue past its deadline is skipped.
      deadline.check("before the request started")
      return handler(deadline)
    except errors.ServingError as error:
      code, message = error.code, error.message
    except Exception as error:  # pylint: disable=broad-except
      # A bug or an unexpected model failure must fail only this request.
      _LOG.exception("%s failed", method)
      code = grpc.StatusCode.INTERNAL
      message = f"{type(error).__name__}: {error}"
    finally:
      if self._metrics is not None:
        self._metrics.observe(
            request_metrics.labels(self._registry, method, model_spec), code,
            time.perf_counter() - started)
    context.abort(code, errors.bounded_message(message))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's PredictionService: Predict and GetModelMetadata."""

  def __init__(self, registry: model_registry.ModelRegistry,
               limits: rpc_handlers.RequestLimits, responder: _Responder):
    self._registry = registry
    self._limits = limits
    self._responder = responder

  def Predict(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "Predict", request.model_spec,
        lambda deadline: rpc_handlers.predict(self._registry, self._limits,
                                              request, deadline))

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "GetModelMetadata", request.model_spec,
        lambda _: rpc_handlers.model_metadata(self._registry, request))

  def Classify(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "Classify is not implemented by this server; use Predict")

  def Regress(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "Regress is not implemented by this server; use Predict")

  def MultiInference(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "MultiInference is not implemented by this server; use "
                  "Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """TF Serving's ModelService: GetModelStatus."""

  def __init__(self, registry: model_registry.ModelRegistry,
               responder: _Responder):
    self._registry = registry
    self._responder = responder

  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "GetModelStatus", request.model_spec,
        lambda _: rpc_handlers.model_status(self._registry, request))

  # pylint: disable-next=invalid-name
  def HandleReloadConfigRequest(self, request, context):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "config reloads are not supported; models are discovered "
                  "by polling --model_base_path")


# ---------------------------------------------------------------- server ---


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  """Everything `serve` needs; the CLI flags map one to one onto it.

  Attributes:
    model_base_path: `<base>` holding `<name>/<version>/`, or with
      `model_name` the `<base>/<name>` directory of a single model.
    model_name: serve only this model (TF Serving's single-model flags).
    host: address to bind; the loopback interface unless asked otherwise.
    port: gRPC port; 0 picks a free one.
    poll_interval_s: seconds between scans for new versions.
    version_policy: which versions to serve.
    max_batch_size: largest batch one request may send.
    max_message_bytes: largest gRPC message, both directions.
    max_workers: threads answering requests.
    metrics_port: Prometheus /metrics port (0 picks one), None for none.
    max_request_seconds: longest a request may take, whatever deadline the
      client set (or none).
    tls_cert_file: PEM certificate chain; with `tls_key_file`, serve TLS only.
    tls_key_file: PEM private key of `tls_cert_file`.
  """
  model_base_path: str
  model_name: Optional[str] = None
  host: str = "127.0.0.1"
  port: int = 8500
  poll_interval_s: float = 2.0
  version_policy: model_registry.VersionPolicy = model_registry.VersionPolicy()
  max_batch_size: int = 1024
  max_message_bytes: int = 64 * 1024 * 1024
  max_workers: int = 8
  metrics_port: Optional[int] = None
  max_request_seconds: float = 30.0
  tls_cert_file: Optional[str] = None
  tls_key_file: Optional[str] = None


def _host_port(host: str, port: int) -> str:
  return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ServerHandle:
  """A running server: its address, its models, and `stop`."""

  def __init__(self, grpc_server: grpc.Server, address: str, port: int,
               registry: model_registry.ModelRegistry, poll_interval_s: float,
               metrics: Optional[request_metrics.RequestMetrics],
               metrics_port: Optional[int]):
    self._grpc_server = grpc_server
    self.address = address
    self.port = port
    self.metrics_port = metrics_port
    self._registry = registry
    self._metrics = metrics
    self._stopping = threading.Event()
    self._poller = threading.Thread(
        target=self._poll, args=(poll_interval_s,), name="model-poller",
        daemon=True)
    self._poller.start()

  def loaded_versions(self) -> dict[str, list[int]]:
    """Served versions by model name."""
    return self._registry.loaded_versions()

  def stop(self, grace_s: float = 5.0) -> None:
    """Stops polling, then lets in-flight requests finish for `grace_s`."""
    self._stopping.set()
    self._poller.join()
    self._grpc_server.stop(grace_s).wait()
    if self._metrics is not None:
      self._metrics.stop()

  def __enter__(self) -> "ServerHandle":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()

  def _poll(self, interval_s: float) -> None:
    while not self._stopping.wait(interval_s):
      try:
        self._registry.refresh()
      except Exception:  # pylint: disable=broad-except
        # The poller must outlive a bad scan, e.g. a missing base path.
        _LOG.exception("Scanning for model versions failed")


def _warn_about_layout(config: ServerConfig,
                       loaded: Mapping[str, list[int]]) -> None:
  numeric = [name for name in loaded
             if model_registry.parse_version(name) is not None]
  if config.model_name is None and numeric:
    _LOG.warning("Models named %s look like versions: to serve one model from "
                 "<base>/<name>, pass --model_name too", numeric)


def _server_credentials(config: ServerConfig,
                        ) -> Optional[grpc.ServerCredentials]:
  """TLS credentials when a certificate and key are given, else None."""
  if config.tls_cert_file is None and config.tls_key_file is None:
    return None
  if config.tls_cert_file is None or config.tls_key_file is None:
    raise ValueError("TLS needs both a certificate and a key file")
  with open(config.tls_key_file, "rb") as key, open(config.tls_cert_file,
                                                     "rb") as cert:
    return grpc.ssl_server_credentials([(key.read(), cert.read())])


def serve(config: ServerConfig) -> ServerHandle:
  """Loads the models, then serves them until `.stop()` is called.

  Returns:
    A handle with the bound `.port` and `.address`.

  Raises:
    ValueError: if only one of the TLS files is given.
    OSError: if a TLS file cannot be read.
  """
  # Read first, so a bad TLS setup fails before any model is loaded.
  credentials = _server_credentials(config)
  registry = model_registry.ModelRegistry(
      config.model_base_path, config.model_name, config.version_policy)
  registry.refresh()
  _warn_about_layout(config, registry.loaded_versions())
  metrics = (request_metrics.RequestMetrics()
             if config.metrics_port is not None else None)
  grpc_server = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers=config.max_workers,
                                            thread_name_prefix="serving"),
      options=[("grpc.max_send_message_length", config.max_message_bytes),
               ("grpc.max_receive_message_length", config.max_message_bytes),
               # Otherwise a second server on a taken port binds silently.
               ("grpc.so_reuseport", 0)])
  responder = _Responder(registry, metrics, config.max_request_seconds)
  limits = rpc_handlers.RequestLimits(config.max_batch_size,
                                      config.max_message_bytes)
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(registry, limits, responder), grpc_server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(
      ModelServicer(registry, responder), grpc_server)
  address = _host_port(config.host, config.port)
  port = (grpc_server.add_insecure_port(address) if credentials is None
          else grpc_server.add_secure_port(address, credentials))
  grpc_server.start()
  metrics_port = (metrics.start(config.host, config.metrics_port)
                  if metrics is not None else None)
  return ServerHandle(grpc_server, _host_port(config.host, port), port,
                      registry, config.poll_interval_s, metrics, metrics_port)


# ------------------------------------------------------------------- CLI ---


def _version_policy_flag(text: str) -> model_registry.VersionPolicy:
  try:
    return model_registry.VersionPolicy.parse(text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from error


def _positive_float(text: str) -> float:
  value = float(text)
  if not value > 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
  return value


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m serving.server",
      description="Serves TF Serving-layout SavedModels over TF Serving's "
                  "gRPC API (Predict, GetModelMetadata, GetModelStatus).")
  parser.add_argument(
      "--model_base_path", required=True,
      help="<base> holding <name>/<version>/ for every model; with "
           "--model_name, the <base>/<name> directory of that one model; a "
           "local path or a URI such as s3://bucket/serving")
  parser.add_argument("--model_name",
                      help="serve only this model, from --model_base_path")
  parser.add_argument("--bind_address", default="127.0.0.1",
                      help="address to listen on (default: %(default)s)")
  parser.add_argument("--port", type=int, default=8500,
                      help="gRPC port, 0 for any free one "
                           "(default: %(default)s)")
  parser.add_argument(
      "--file_system_poll_wait_seconds", type=float, default=2.0,
      help="seconds between scans for new versions (default: %(default)s)")
  parser.add_argument(
      "--version_policy", type=_version_policy_flag,
      default=model_registry.VersionPolicy(),
      help="latest:N, all, or specific:V1,V2 (default: latest:1)")
  parser.add_argument("--max_batch_size", type=int, default=1024,
                      help="largest batch per request (default: %(default)s)")
  parser.add_argument(
      "--max_message_bytes", type=int, default=64 * 1024 * 1024,
      help="largest gRPC message, sent or received (default: %(default)s)")
  parser.add_argument("--grpc_max_threads", type=int, default=8,
                      help="threads answering requests (default: %(default)s)")
  parser.add_argument(
      "--metrics_port", type=int, default=None,
      help="serve Prometheus /metrics on this port (default: off)")
  parser.add_argument(
      "--max_request_seconds", type=_positive_float, default=30.0,
      help="answer DEADLINE_EXCEEDED to requests taking longer, whatever the "
           "client's deadline (default: %(default)s)")
  parser.add_argument("--tls_cert_file",
                      help="PEM certificate chain; with --tls_key_file the "
                           "port speaks TLS only (default: plaintext)")
  parser.add_argument("--tls_key_file",
                      help="PEM private key of --tls_cert_file")
  return parser


def parse_flags(argv: Optional[list[str]] = None) -> ServerConfig:
  """Maps command-line flags onto a ServerConfig."""
  parser = _parser()
  flags = parser.parse_args(argv)
  if (flags.tls_cert_file is None) != (flags.tls_key_file is None):
    parser.error("--tls_cert_file and --tls_key_file go together")
  return ServerConfig(
      model_base_path=flags.model_base_path, model_name=flags.model_name,
      host=flags.bind_address, port=flags.port,
      poll_interval_s=flags.file_system_poll_wait_seconds,
      version_policy=flags.version_policy, max_batch_size=flags.max_batch_size,
      max_message_bytes=flags.max_message_bytes,
      max_workers=flags.grpc_max_threads, metrics_port=flags.metrics_port,
      max_request_seconds=flags.max_request_seconds,
      tls_cert_file=flags.tls_cert_file, tls_key_file=flags.tls_key_file)


def _print_startup(config: ServerConfig, handle: ServerHandle) -> None:
  print(f"Serving gRPC on {handle.address}", flush=True)
  if handle.metrics_port is not None:
    print("Metrics on http://"
          f"{_host_port(config.host, handle.metrics_port)}/metrics", flush=True)
  loaded = handle.loaded_versions()
  if not loaded:
    print(f"  no models loaded yet; polling {config.model_base_path}",
          flush=True)
  for name, versions in sorted(loaded.items()):
    print(f"  model {name}: versions {versions}", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
  logging.basicConfig(level=logging.INFO,
                      format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  config = parse_flags(argv)
  stopping = threading.Event()
  # Installed before serving, so an early signal still shuts down cleanly.
  previous_handlers = {
      signal_number: signal.signal(signal_number, lambda *_: stopping.set())
      for signal_number in (signal.SIGINT, signal.SIGTERM)}
  try:
    with serve(config) as handle:
      _print_startup(config, handle)
      stopping.wait()
      print("Stopping: finishing in-flight requests", flush=True)
  finally:
    for signal_number, handler in previous_handlers.items():
      signal.signal(signal_number, handler)
  return 0


if __name__ == "__main__":
  filesystems.exit_process(main())
