"""The model server's Prometheus metrics, scraped over HTTP."""

from __future__ import annotations

import urllib.request

import grpc
import pytest

from models import serving_names
from serving.testing_grpc import (local_only, open_stubs, predict_request,
                                  serve_version_1, served_version)
from serving.testing_models import MODEL_NAME
from tests import prerequisites


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
