"""A local model server that speaks TF Serving's gRPC protocol.

It serves every model under a base path laid out as TF Serving expects,
`<base>/<model_name>/<version>/` holding plain-TF SavedModels, and implements
`PredictionService` (Predict, GetModelMetadata) and `ModelService`
(GetModelStatus) with TF Serving's status codes and messages, so clients can
switch between it and `tensorflow_model_server` by changing the address.

A background poller keeps the served versions in line with the disk and the
version policy; the base path may be in object storage (`s3://bucket/serving`,
through `tf.io.gfile`), which is polled the same way, as TF Serving does. A
store that stops answering is logged and counted, and the versions already
loaded keep serving. On SIGTERM or SIGINT the server stops taking requests,
gives those in flight a grace period, and exits, whatever a scan is doing.
The parts, each usable on its own:

- `serving.model_registry`: version policy, loading and unloading;
- `serving.servables`: a loaded version and its signatures, including the
  `retrieve_scann` signature added when a version holds a ScaNN index;
- `serving.rpc_handlers`: what each RPC answers, without gRPC;
- `serving.errors`: failures as gRPC status codes, and request deadlines;
- `serving.request_metrics`: Prometheus request counts and latencies, and
  scan failures;
- `serving.stored_histories`: with an online history store
  (`serving.history_store`), requests that send a user id alone, and the
  event RPC that appends to it;
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
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from data import features
from models import serving_names
from serving import errors
from serving import history_journal
from serving import history_store
from serving import model_registry
from serving import request_metrics
from serving import rpc_handlers
from serving import servables
from serving import stored_histories
from transforms import filesystems

_LOG = logging.getLogger(__name__)


# -------------------------------------------------------------- services ---


class _RequestResolver:
  """One request's view of the registry: it remembers the servable the
  request resolved, so that the request's metrics describe the version it
  ran on without resolving the model again (a swap in between would make the
  two differ)."""

  def __init__(self, registry: model_registry.ModelRegistry):
    self._registry = registry
    self.servable: Optional[servables.Servable] = None

  def resolve(self, model_spec: model_pb2.ModelSpec) -> servables.Servable:
    self.servable = self._registry.resolve(model_spec)
    return self.servable


# Runs one request: its deadline, and where to resolve its model.
_Handler = Callable[[errors.Deadline, _RequestResolver], object]


class _Responder:
  """Turns request handlers into gRPC answers, errors and metrics included."""

  def __init__(self, registry: model_registry.ModelRegistry,
               metrics: Optional[request_metrics.ServerMetrics],
               max_request_seconds: float):
    self._registry = registry
    self._metrics = metrics
    self._max_request_seconds = max_request_seconds

  def answer(self, context: grpc.ServicerContext, method: str,
             model_spec: model_pb2.ModelSpec, handler: _Handler):
    started = time.perf_counter()
    resolver = _RequestResolver(self._registry)
    code = grpc.StatusCode.OK
    try:
      deadline = errors.Deadline.of(context, self._max_request_seconds)
      # A request that waited in the queue past its deadline is skipped.
      deadline.check("before the request started")
      return handler(deadline, resolver)
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
            request_metrics.labels(self._registry, method, model_spec,
                                   resolver.servable),
            code, time.perf_counter() - started)
    context.abort(code, errors.bounded_message(message))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's PredictionService: Predict and GetModelMetadata."""

  def __init__(self, limits: rpc_handlers.RequestLimits,
               responder: _Responder,
               histories: Optional[stored_histories.StoredHistories] = None):
    self._limits = limits
    self._responder = responder
    self._histories = histories

  def Predict(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "Predict", request.model_spec,
        lambda deadline, resolver: rpc_handlers.predict(
            resolver, self._limits, request, deadline, self._histories))

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "GetModelMetadata", request.model_spec,
        lambda _, resolver: rpc_handlers.model_metadata(resolver, request))

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
        lambda _deadline, _resolver: rpc_handlers.model_status(
            self._registry, request))

  # pylint: disable-next=invalid-name
  def HandleReloadConfigRequest(self, request, context):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "config reloads are not supported; models are discovered "
                  "by polling --model_base_path")


def _user_events_handler(limits: rpc_handlers.RequestLimits,
                         responder: _Responder,
                         histories: stored_histories.StoredHistories,
                         ) -> grpc.GenericRpcHandler:
  """The event RPC beside PredictionService (`USER_EVENTS_SERVICE`), over
  TF Serving's Predict messages, so it needs no generated code of its own."""

  def append_events(request, context):
    return responder.answer(
        context, serving_names.APPEND_EVENTS, request.model_spec,
        lambda _deadline, _resolver: histories.append_events(request, limits))

  return grpc.method_handlers_generic_handler(
      serving_names.USER_EVENTS_SERVICE, {
          serving_names.APPEND_EVENTS: grpc.unary_unary_rpc_method_handler(
              append_events,
              request_deserializer=predict_pb2.PredictRequest.FromString,
              response_serializer=(
                  predict_pb2.PredictResponse.SerializeToString))})


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
    shutdown_grace_s: how long `stop` lets requests in flight finish; under
      Kubernetes' default 30 s between SIGTERM and SIGKILL.
    history_store: URL of the online user-history store
      (`sqlite:///path`, `redis://host:port/db`); requests may then send a
      user id alone, and the event RPC is served. None: no store.
    history_dir: where the push's history snapshot sits; accepted events are
      logged there (`events.jsonl`), for `serving.history_journal` to
      rebuild the store. None logs no event.
    history_length: newest stored items the query tower is given; the
      pushed model's `ExamplesConfig.history_length`.
    rebuild_history_store: at start, rebuild the store from `history_dir`'s
      snapshot and event log (`serving.history_journal`).
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
  shutdown_grace_s: float = 20.0
  history_store: Optional[str] = None
  history_dir: Optional[str] = None
  history_length: int = features.HISTORY_LENGTH
  rebuild_history_store: bool = False


def _host_port(host: str, port: int) -> str:
  return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _VersionPoller:
  """Scans the model base path now and then every interval, on a daemon
  thread, and reports each scan (a log line when scanning starts or stops
  failing, and the metrics).

  A scan blocked on an object store that does not answer holds up nothing
  else: requests are answered from the versions already loaded, and `stop`
  does not wait for the scan (a daemon thread, the process may exit under
  it). The store's calls are bounded too (`transforms.filesystems`), so such
  a scan ends, and a later one sees the store come back.
  """

  def __init__(self, registry: model_registry.ModelRegistry,
               model_base_path: str, interval_s: float,
               metrics: Optional[request_metrics.ServerMetrics]):
    self._registry = registry
    self._model_base_path = model_base_path
    self._interval_s = interval_s
    self._metrics = metrics
    self._failing = False
    # `time.monotonic()` when the scan in progress started; None between.
    self._scan_started: Optional[float] = None
    self._stopping = threading.Event()
    self._thread = threading.Thread(target=self._poll, name="model-poller",
                                    daemon=True)

  def scan(self) -> None:
    """Brings the registry in line with the base path once, and reports."""
    self._scan_started = time.monotonic()
    try:
      succeeded = self._registry.refresh()
    except Exception:  # pylint: disable=broad-except
      # The poller must outlive a bad scan, whatever it raises.
      _LOG.exception("Scanning %s for model versions failed",
                     self._model_base_path)
      succeeded = False
    finally:
      self._scan_started = None
    if self._metrics is not None:
      self._metrics.observe_scan(succeeded)
    if not succeeded and not self._failing:
      _LOG.warning("Cannot scan %s for model versions; still serving %s",
                   self._model_base_path, self._registry.loaded_versions())
    elif succeeded and self._failing:
      _LOG.info("Scanning %s for model versions works again",
                self._model_base_path)
    self._failing = not succeeded

  def start(self) -> None:
    self._thread.start()

  def stop(self) -> None:
    """Ends polling after the scan in progress, without waiting for it."""
    self._stopping.set()
    started = self._scan_started
    if started is not None:
      _LOG.warning("Not waiting for the scan of %s, running for %.1f s (an "
                   "object store that does not answer?)",
                   self._model_base_path, time.monotonic() - started)

  def _poll(self) -> None:
    while not self._stopping.wait(self._interval_s):
      self.scan()


class ServerHandle:
  """A running server: its address, its models, and `stop`."""

  def __init__(self, grpc_server: grpc.Server, address: str, port: int,
               registry: model_registry.ModelRegistry, poller: _VersionPoller,
               metrics: Optional[request_metrics.ServerMetrics],
               metrics_port: Optional[int], shutdown_grace_s: float,
               histories: Optional[stored_histories.StoredHistories]):
    self._grpc_server = grpc_server
    self.address = address
    self.port = port
    self.metrics_port = metrics_port
    self._registry = registry
    self._poller = poller
    self._metrics = metrics
    self._shutdown_grace_s = shutdown_grace_s
    self._histories = histories

  def loaded_versions(self) -> dict[str, list[int]]:
    """Served versions by model name."""
    return self._registry.loaded_versions()

  def stop(self) -> None:
    """Stops taking requests and polling, then waits for the requests in
    flight for up to the shutdown grace period and cancels those left.

    A scan in progress is not waited for, so this returns within the grace
    period whether or not the model store answers.
    """
    self._poller.stop()
    self._grpc_server.stop(self._shutdown_grace_s).wait()
    if self._metrics is not None:
      self._metrics.stop()
    if self._histories is not None:
      self._histories.close()

  def __enter__(self) -> "ServerHandle":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()


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


def _stored_histories(config: ServerConfig,
                      ) -> Optional[stored_histories.StoredHistories]:
  if config.history_store is None:
    if config.history_dir is not None:
      raise ValueError("a history directory needs a history store")
    return None
  if config.history_dir is None:
    if config.rebuild_history_store:
      raise ValueError("rebuilding the history store needs its directory")
    _LOG.warning("No history directory: accepted events are not logged, and "
                 "a rebuilt store will lack them")
  store = history_store.open_store(config.history_store)
  if config.rebuild_history_store:
    users = history_journal.rebuild(store, config.history_dir)
    _LOG.info("Rebuilt %s from %s: %d users", config.history_store,
              config.history_dir, users)
  return stored_histories.StoredHistories(
      store, config.history_length,
      None if config.history_dir is None
      else history_journal.EventLog(config.history_dir))


def serve(config: ServerConfig) -> ServerHandle:
  """Loads the models, then serves them until `.stop()` is called.

  Returns:
    A handle with the bound `.port` and `.address`.

  Raises:
    ValueError: if only one of the TLS files is given, for a history
      directory without a store (or a rebuild without a directory), or a
      store URL of an unknown scheme.
    OSError: if a TLS file cannot be read.
    FileNotFoundError: for a rebuild without a snapshot.
    StoreUnavailableError: if an SQLite history store cannot be opened, or
      the store cannot be rebuilt.
  """
  # Read first, so a bad TLS setup fails before any model is loaded.
  credentials = _server_credentials(config)
  registry = model_registry.ModelRegistry(
      config.model_base_path, config.model_name, config.version_policy)
  metrics = (request_metrics.ServerMetrics()
             if config.metrics_port is not None else None)
  poller = _VersionPoller(registry, config.model_base_path,
                          config.poll_interval_s, metrics)
  poller.scan()
  _warn_about_layout(config, registry.loaded_versions())
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
  histories = _stored_histories(config)
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(limits, responder, histories), grpc_server)
  if histories is not None:
    grpc_server.add_generic_rpc_handlers(
        (_user_events_handler(limits, responder, histories),))
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(
      ModelServicer(registry, responder), grpc_server)
  address = _host_port(config.host, config.port)
  port = (grpc_server.add_insecure_port(address) if credentials is None
          else grpc_server.add_secure_port(address, credentials))
  grpc_server.start()
  metrics_port = (metrics.start(config.host, config.metrics_port)
                  if metrics is not None else None)
  poller.start()
  return ServerHandle(grpc_server, _host_port(config.host, port), port,
                      registry, poller, metrics, metrics_port,
                      config.shutdown_grace_s, histories)


# ------------------------------------------------------------------- CLI ---

# How often the main thread wakes to run signal handlers. Python runs them
# in the main thread only, when it next runs Python code; the kernel may hand
# a process's SIGTERM to any thread (TensorFlow's, gRPC's, the poller), and a
# main thread in an untimed wait would then never see it.
_SIGNAL_CHECK_S = 0.5


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
  parser.add_argument(
      "--shutdown_grace_seconds", type=_positive_float, default=20.0,
      help="on SIGTERM or SIGINT, how long requests in flight may take to "
           "finish before the server exits; keep it under Kubernetes' "
           "terminationGracePeriodSeconds (default: %(default)s)")
  parser.add_argument(
      "--history_store",
      help="online user-history store, sqlite:///path or "
           "redis://host:port/db: requests may then send a user id alone, "
           f"and {serving_names.USER_EVENTS_SERVICE}/"
           f"{serving_names.APPEND_EVENTS} appends events (default: none)")
  parser.add_argument(
      "--history_dir",
      help="the push's history snapshot directory, where accepted events "
           "are logged for a rebuild of the store (needs --history_store)")
  parser.add_argument(
      "--rebuild_history_store", action="store_true",
      help="at start, rebuild the store from --history_dir's snapshot and "
           "event log")
  parser.add_argument(
      "--history_length", type=int, default=features.HISTORY_LENGTH,
      help="newest stored items given to the query tower; the pushed "
           "model's history length (default: %(default)s)")
  return parser


def parse_flags(argv: Optional[list[str]] = None) -> ServerConfig:
  """Maps command-line flags onto a ServerConfig."""
  parser = _parser()
  flags = parser.parse_args(argv)
  if (flags.tls_cert_file is None) != (flags.tls_key_file is None):
    parser.error("--tls_cert_file and --tls_key_file go together")
  if flags.history_dir is not None and flags.history_store is None:
    parser.error("--history_dir needs --history_store")
  if flags.rebuild_history_store and flags.history_dir is None:
    parser.error("--rebuild_history_store needs --history_dir")
  return ServerConfig(
      model_base_path=flags.model_base_path, model_name=flags.model_name,
      host=flags.bind_address, port=flags.port,
      poll_interval_s=flags.file_system_poll_wait_seconds,
      version_policy=flags.version_policy, max_batch_size=flags.max_batch_size,
      max_message_bytes=flags.max_message_bytes,
      max_workers=flags.grpc_max_threads, metrics_port=flags.metrics_port,
      max_request_seconds=flags.max_request_seconds,
      tls_cert_file=flags.tls_cert_file, tls_key_file=flags.tls_key_file,
      shutdown_grace_s=flags.shutdown_grace_seconds,
      history_store=flags.history_store, history_dir=flags.history_dir,
      history_length=flags.history_length,
      rebuild_history_store=flags.rebuild_history_store)


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
      while not stopping.wait(_SIGNAL_CHECK_S):
        pass
      print("Stopping: no new requests; those in flight have "
            f"{config.shutdown_grace_s:g} s to finish", flush=True)
  finally:
    for signal_number, handler in previous_handlers.items():
      signal.signal(signal_number, handler)
  return 0


if __name__ == "__main__":
  filesystems.exit_process(main())
