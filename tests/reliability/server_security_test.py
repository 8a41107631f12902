"""Security basics of the model server: binding, names, deadlines, TLS, limits.

What a request can name is checked by reading serving/server.py as well:
model names only key the in-memory snapshot of loaded versions (never a
path), signature and input names only key the loaded model's maps, and the
base path comes from the command line alone.
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
import time
import types

import grpc
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import errors
from serving import model_registry
from serving import rpc_handlers
from serving import servables
from serving import server
from serving import testing_models
from serving.testing_grpc import (MAX_BATCH_SIZE, assert_rpc_error,
                                  open_stubs, predict_request,
                                  publish_version, served_version,
                                  start_local_server)
from serving.testing_models import MODEL_NAME
from tests import prerequisites


@pytest.fixture(scope="module")
def model_base(tmp_path_factory) -> pathlib.Path:
  template = tmp_path_factory.mktemp("template") / "model"
  testing_models.export_tiny_model(str(template))
  base = tmp_path_factory.mktemp("models")
  publish_version(template, base / MODEL_NAME, 1)
  return base


@pytest.fixture(scope="module")
def stubs(model_base):
  with start_local_server(model_base) as handle, open_stubs(
      handle.address) as opened:
    yield opened


def test_binds_to_loopback_unless_told_otherwise(model_base):
  assert server.ServerConfig(model_base_path="m").host == "127.0.0.1"
  assert server.parse_flags(["--model_base_path=m"]).host == "127.0.0.1"
  with start_local_server(model_base) as handle:
    assert handle.address.startswith("127.0.0.1:")


# ------------------------------------------------------------------ names ---


@pytest.mark.parametrize("name", [
    "..", ".", "../" + MODEL_NAME, f"{MODEL_NAME}/../{MODEL_NAME}", "/etc",
    "a\\b", "", "has space", "x" * 256, "nul\x00", "naïve"], ids=[
        "dotdot", "dot", "parent", "through_parent", "absolute", "backslash",
        "empty", "space", "256_chars", "nul", "non_ascii"])
def test_model_names_that_are_not_plain_names_are_invalid(name, stubs):
  predict = predict_request(model_name=name)
  metadata = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  metadata.model_spec.name = name
  status = get_model_status_pb2.GetModelStatusRequest()
  status.model_spec.name = name

  for call in (lambda: stubs.prediction.Predict(predict, timeout=10),
               lambda: stubs.prediction.GetModelMetadata(metadata, timeout=10),
               lambda: stubs.model.GetModelStatus(status, timeout=10)):
    assert_rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT,
                     "invalid model name")


def test_plain_unknown_names_are_still_not_found(stubs):
  assert_rpc_error(
      lambda: stubs.prediction.Predict(
          predict_request(model_name="Other-model_2.v1"), timeout=10),
      grpc.StatusCode.NOT_FOUND, "Other-model_2.v1")


def test_directories_that_no_request_could_name_are_not_loaded(model_base,
                                                               tmp_path):
  base = tmp_path / "models"
  for name in (MODEL_NAME, "has space"):
    publish_version(model_base / MODEL_NAME / "1", base / name, 1)
  with start_local_server(base) as handle:
    assert handle.loaded_versions() == {MODEL_NAME: [1]}


# -------------------------------------------------------------- deadlines ---


def _context(remaining):
  return types.SimpleNamespace(time_remaining=lambda: remaining)


def test_deadline_is_the_client_deadline_or_the_server_cap_if_sooner():
  client_first = errors.Deadline.of(_context(2.0), max_request_seconds=30)
  cap_first = errors.Deadline.of(_context(60.0), max_request_seconds=30)
  no_client_deadline = errors.Deadline.of(_context(None),
                                          max_request_seconds=30)

  assert client_first.expires_at - time.monotonic() == pytest.approx(2, abs=1)
  assert cap_first.expires_at - time.monotonic() == pytest.approx(30, abs=1)
  assert no_client_deadline.source == "--max_request_seconds=30"


def test_expired_deadline_skips_the_model(model_base, monkeypatch):
  runs = []
  monkeypatch.setattr(servables.SavedModelSignature, "run",
                      lambda self, inputs: runs.append(inputs))
  registry = model_registry.ModelRegistry(str(model_base))
  registry.refresh()
  limits = rpc_handlers.RequestLimits(max_batch_size=MAX_BATCH_SIZE,
                                      max_decoded_bytes=1 << 20)

  with pytest.raises(errors.ServingError) as raised:
    rpc_handlers.predict(
        registry, limits, predict_request(),
        errors.Deadline.of(_context(0.0), max_request_seconds=30))

  assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
  assert "client's deadline" in raised.value.message
  assert not runs


def test_requests_over_max_request_seconds_are_deadline_exceeded(
    model_base, monkeypatch):
  run = servables.SavedModelSignature.run

  def slow_run(self, inputs):
    time.sleep(0.5)
    return run(self, inputs)

  with start_local_server(model_base, max_request_seconds=0.2) as handle, \
      open_stubs(handle.address) as stubs_:
    with monkeypatch.context() as patch:
      patch.setattr(servables.SavedModelSignature, "run", slow_run)
      assert_rpc_error(
          lambda: stubs_.prediction.Predict(predict_request(), timeout=10),
          grpc.StatusCode.DEADLINE_EXCEEDED, "--max_request_seconds=0.2",
          MODEL_NAME)
    assert served_version(stubs_) == 1


# ------------------------------------------------------------------ limits ---


def test_error_messages_stay_small_whatever_the_request_echoes(stubs):
  request = predict_request(signature="s" * 1_000_000)
  with pytest.raises(grpc.RpcError) as raised:
    stubs.prediction.Predict(request, timeout=10)
  assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
  assert len(raised.value.details()) < 2100


def test_a_small_request_cannot_declare_millions_of_strings(stubs):
  # 3M strings is below the 64M-element count the message size allows, but
  # decoding them would take ~100 MB and seconds of CPU.
  request = predict_request()
  request.inputs["history_item_ids"].CopyFrom(tensor_pb2.TensorProto(
      dtype=types_pb2.DT_STRING, string_val=[b"item_1"],
      tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[
          tensor_shape_pb2.TensorShapeProto.Dim(size=size)
          for size in (1, 3_000_000)])))
  assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, "history_item_ids",
                   "elements")


# --------------------------------------------------------------------- TLS ---


def _self_signed_certificate(directory: pathlib.Path) -> tuple[str, str]:
  """Writes a certificate for localhost/127.0.0.1 and its key; returns paths."""
  x509 = prerequisites.module("cryptography.x509")
  from cryptography.hazmat.primitives import hashes  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives import serialization  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=g-import-not-at-top

  key = ec.generate_private_key(ec.SECP256R1())
  name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
  now = datetime.datetime.now(datetime.timezone.utc)
  certificate = (
      x509.CertificateBuilder().subject_name(name).issuer_name(name)
      .public_key(key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(minutes=5))
      .not_valid_after(now + datetime.timedelta(days=1))
      .add_extension(x509.SubjectAlternativeName([
          x509.DNSName("localhost"),
          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
      .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                     critical=True)
      .sign(key, hashes.SHA256()))
  cert_file, key_file = directory / "server.crt", directory / "server.key"
  cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
  key_file.write_bytes(key.private_bytes(
      serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
      serialization.NoEncryption()))
  return str(cert_file), str(key_file)


def test_tls_serves_tls_clients_only(model_base, tmp_path):
  cert_file, key_file = _self_signed_certificate(tmp_path)
  with start_local_server(model_base, tls_cert_file=cert_file,
                          tls_key_file=key_file) as handle:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(cert_file).read_bytes())
    with grpc.secure_channel(handle.address, credentials) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(
          channel).Predict(predict_request(), timeout=10)
      assert response.model_spec.version.value == 1

    with open_stubs(handle.address) as plaintext:
      assert_rpc_error(lambda: served_version(plaintext),
                       grpc.StatusCode.UNAVAILABLE)


def test_tls_flags_map_onto_the_config_and_go_together(tmp_path):
  config = server.parse_flags([
      "--model_base_path=/models", "--tls_cert_file=c.pem",
      "--tls_key_file=k.pem", "--max_request_seconds=5"])
  assert (config.tls_cert_file, config.tls_key_file,
          config.max_request_seconds) == ("c.pem", "k.pem", 5.0)

  with pytest.raises(SystemExit):
    server.parse_flags(["--model_base_path=/models", "--tls_cert_file=c.pem"])
  with pytest.raises(SystemExit):
    server.parse_flags(["--model_base_path=/models",
                        "--max_request_seconds=0"])
  with pytest.raises(ValueError, match="both"):
    server.serve(server.ServerConfig(model_base_path=str(tmp_path), port=0,
                                     tls_key_file="k.pem"))
