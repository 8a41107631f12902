"""Prometheus metrics of the model server: requests, and scans for versions.

Optional: `prometheus_client` is needed only when `--metrics_port` is set.
"""

from __future__ import annotations

import time
from typing import Optional

import grpc
from tensorflow_serving.apis import model_pb2

from models import serving_names
from serving import model_registry
from serving import servables

try:
  import prometheus_client
except ImportError:  # Metrics are optional; --metrics_port then fails clearly.
  prometheus_client = None

_UNKNOWN_LABEL = "unknown"


class ServerMetrics:
  """Prometheus metrics of the server, on their own HTTP port.

  Requests are counted and timed by model, signature, method and status
  code. Labels only take names of models the registry serves, so clients
  cannot grow the label sets without bound by sending made-up names.

  Scans of the model base path are counted when they fail, and the time of
  the last one that succeeded is kept: while the object store holding the
  base path does not answer, that time stops moving, even before a call to
  it times out.
  """

  def __init__(self):
    if prometheus_client is None:
      raise RuntimeError("--metrics_port needs the prometheus_client package")
    self._registry = prometheus_client.CollectorRegistry()
    self._requests = prometheus_client.Counter(
        "vrec_serving_requests", "gRPC requests by outcome.",
        ["model", "signature", "method", "code"], registry=self._registry)
    self._latency = prometheus_client.Histogram(
        "vrec_serving_request_latency_seconds", "gRPC request latency.",
        ["model", "signature", "method"], registry=self._registry)
    self._scan_failures = prometheus_client.Counter(
        "vrec_serving_model_scan_failures",
        "Scans of the model base path that could not read it all.",
        registry=self._registry)
    self._last_scan = prometheus_client.Gauge(
        "vrec_serving_model_scan_last_success_timestamp_seconds",
        "When a scan of the model base path last read it all (Unix time).",
        registry=self._registry)
    self._http_server = None

  def start(self, host: str, port: int) -> int:
    """Serves /metrics; returns the bound port."""
    self._http_server, _ = prometheus_client.start_http_server(
        port, addr=host, registry=self._registry)
    return self._http_server.server_port

  def stop(self) -> None:
    if self._http_server is not None:
      self._http_server.shutdown()
      self._http_server.server_close()

  def observe(self, labels: tuple[str, str, str], code: grpc.StatusCode,
              seconds: float) -> None:
    self._requests.labels(*labels, code.name).inc()
    self._latency.labels(*labels).observe(seconds)

  def observe_scan(self, succeeded: bool) -> None:
    if succeeded:
      self._last_scan.set(time.time())
    else:
      self._scan_failures.inc()


def labels(registry: model_registry.ModelRegistry, method: str,
           model_spec: model_pb2.ModelSpec,
           servable: Optional[servables.Servable]) -> tuple[str, str, str]:
  """(model, signature, method); names the server does not know are bucketed.

  Args:
    registry: the served models.
    method: the RPC's name.
    model_spec: what the request asked for.
    servable: the version the request resolved, None if it resolved none;
      its signatures are the ones known to the request.
  """
  if not registry.has_model(model_spec.name):
    return _UNKNOWN_LABEL, _UNKNOWN_LABEL, method
  if method != "Predict":
    return model_spec.name, "", method
  signature_name = model_spec.signature_name or serving_names.DEFAULT
  known = servable is not None and signature_name in servable.signatures
  return model_spec.name, signature_name if known else _UNKNOWN_LABEL, method
