"""The model server's Prometheus metrics, scraped over HTTP."""

from __future__ import annotations

import urllib.request

import grpc
import pytest

from models import serving_names
from serving import model_registry
from serving.testing_grpc import (local_only, open_stubs, predict_request,
                                  serve_version_1, served_version, wait_for)
from serving.testing_models import MODEL_NAME
from tests import prerequisites

SCAN_FAILURES = "vrec_serving_model_scan_failures_total"
LAST_GOOD_SCAN = "vrec_serving_model_scan_last_success_timestamp_seconds"


@local_only
def test_metrics_count_requests_by_model_signature_and_code(model_template,
                                                            tmp_path):
  parser = prerequisites.module("prometheus_client.parser")
  with serve_version_1(model_template, tmp_path, metrics_port=0) as handle, \
      open_stubs(handle.address) as stubs:
    served_version(stubs)
    with pytest.raises(grpc.RpcError):
      stubs.prediction.Predict(predict_request(model_name="made_up"))
    with urllib.request.urlopen(
        f"http://127.0.0.1:{handle.metrics_port}/metrics", timeout=10) as page:
      metrics = page.read().decode()

  counts = {tuple(sorted(sample.labels.items())): sample.value
            for family in parser.text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "vrec_serving_requests_total"}
  ok = dict(model=MODEL_NAME, signature=serving_names.DEFAULT,
            method="Predict", code="OK")
  unknown = dict(model="unknown", signature="unknown", method="Predict",
                 code="NOT_FOUND")
  assert counts[tuple(sorted(ok.items()))] == 1
  assert counts[tuple(sorted(unknown.items()))] == 1
  assert "made_up" not in metrics


@local_only
def test_a_request_resolves_its_model_once(model_template, tmp_path,
                                           monkeypatch):
  resolved = []
  resolve = model_registry.ModelRegistry.resolve

  def counted_resolve(registry, model_spec):
    resolved.append(model_spec.name)
    return resolve(registry, model_spec)

  monkeypatch.setattr(model_registry.ModelRegistry, "resolve", counted_resolve)
  with serve_version_1(model_template, tmp_path, metrics_port=0) as handle, \
      open_stubs(handle.address) as stubs:
    served_version(stubs)

  assert resolved == [MODEL_NAME]


@local_only
def test_failed_scans_are_counted_and_the_last_good_one_timed(model_template,
                                                              tmp_path):
  base = tmp_path / "base"
  with serve_version_1(model_template, base, metrics_port=0) as handle, \
      open_stubs(handle.address) as stubs:
    first_good_scan = _scrape(handle)[LAST_GOOD_SCAN]
    base.rename(tmp_path / "away")
    wait_for(lambda: _scrape(handle)[SCAN_FAILURES] > 0)
    assert served_version(stubs) == 1
    (tmp_path / "away").rename(base)
    wait_for(lambda: _scrape(handle)[LAST_GOOD_SCAN] > first_good_scan)


def _scrape(handle) -> dict[str, float]:
  """The unlabelled samples of the server's /metrics, by name."""
  parser = prerequisites.module("prometheus_client.parser")
  with urllib.request.urlopen(
      f"http://127.0.0.1:{handle.metrics_port}/metrics", timeout=10) as page:
    metrics = page.read().decode()
  return {sample.name: sample.value
          for family in parser.text_string_to_metric_families(metrics)
          for sample in family.samples if not sample.labels}
