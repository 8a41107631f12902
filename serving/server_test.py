"""Tests for the TF Serving-compatible model server, over real gRPC.

The protocol tests talk to whatever the `target` fixture starts; by default
that is `serving.server` on loopback. To check that they hold for the real
TF Serving too, set one of:

- VREC_TF_SERVING_BINARY=/path/to/tensorflow_model_server: the fixture starts
  that binary on the test model;
- VREC_TF_SERVING_ADDRESS=host:port: a running server that already serves the
  test model as "tiny_retrieval", exported with
  `python -m serving.server_test DIR` and served with
  `--model_name=tiny_retrieval --model_base_path=DIR/tiny_retrieval`.

Tests of this server's own features (ScaNN, version swaps, limits, metrics)
are then skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Callable, Iterator, Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from data import features
from models import serving_names
from serving import client
from serving import model_registry
from serving import scann_index
from serving import servables
from serving import server

MODEL_NAME = "tiny_retrieval"
ITEM_IDS = np.array([f"item_{i}" for i in range(24)])
TOP_K = 5
MAX_BATCH_SIZE = 8
_RNG = np.random.default_rng(7)
ITEM_EMBEDDINGS = _RNG.normal(size=(len(ITEM_IDS), 4)).astype(np.float32)
USER_EMBEDDINGS = _RNG.normal(size=(8, 4)).astype(np.float32)
# The tiny ranker's logit: user . item, plus this per history query.
QUERY_LOGIT = 0.5
RANK_SIGNATURE = "rank"
RANK_QUERIES_SIGNATURE = "rank_history_queries"

_EXTERNAL_ADDRESS = os.environ.get("VREC_TF_SERVING_ADDRESS")
_EXTERNAL_BINARY = os.environ.get("VREC_TF_SERVING_BINARY")
local_only = pytest.mark.skipif(
    bool(_EXTERNAL_ADDRESS or _EXTERNAL_BINARY),
    reason="tests serving.server's own features, not the TF Serving protocol")
_State = get_model_status_pb2.ModelVersionStatus.State


# ------------------------------------------------------------ test model ---


class TinyRetrievalModel(tf.Module):
  """The pushed retrieval model's serving interface, on 24 items, and a
  ranker's under other signature names (`RANK_SIGNATURE`,
  `RANK_QUERIES_SIGNATURE`)."""

  def __init__(self):
    super().__init__()
    self.item_ids = tf.constant(ITEM_IDS)
    self.item_embeddings = tf.Variable(ITEM_EMBEDDINGS)
    self.user_embeddings = tf.Variable(USER_EMBEDDINGS)

  def _query(self, user_id, timestamp):
    users = tf.strings.to_hash_bucket_fast(user_id, len(USER_EMBEDDINGS))
    # Zero weight, but the signature really consumes the timestamp.
    recency = 0.0 * tf.cast(timestamp, tf.float32)[:, tf.newaxis]
    return tf.gather(self.user_embeddings, users) + recency

  def signatures(self) -> dict:
    specs = (tf.TensorSpec([None], tf.string, name="user_id"),
             tf.TensorSpec([None, None], tf.string, name="history_item_ids"),
             tf.TensorSpec([None], tf.int64, name="timestamp"))

    @tf.function(input_signature=specs)
    def query_embedding(user_id, history_item_ids, timestamp):
      del history_item_ids  # The tiny query tower ignores the history.
      return {serving_names.EMBEDDING: self._query(user_id, timestamp)}

    @tf.function(input_signature=specs)
    def retrieve(user_id, history_item_ids, timestamp):
      scores = tf.matmul(self._query(user_id, timestamp), self.item_embeddings,
                         transpose_b=True)
      seen = tf.reduce_any(
          tf.equal(history_item_ids[:, :, tf.newaxis], self.item_ids), axis=1)
      top_scores, top = tf.math.top_k(tf.where(seen, -1e9, scores), TOP_K)
      return {serving_names.ITEM_IDS: tf.gather(self.item_ids, top), "scores": top_scores}

    ranker_specs = specs + (tf.TensorSpec([None], tf.string, name="item_id"),)

    def probability(user_id, timestamp, item_id, query_count):
      items = tf.argmax(tf.cast(tf.equal(item_id[:, tf.newaxis],
                                         self.item_ids), tf.int32), axis=1)
      logits = tf.reduce_sum(self._query(user_id, timestamp) * tf.gather(
          self.item_embeddings, items), axis=1)
      return {serving_names.RANKER_PROBABILITY: tf.sigmoid(
          logits + QUERY_LOGIT * query_count)}

    @tf.function(input_signature=ranker_specs)
    def rank(user_id, history_item_ids, timestamp, item_id):
      del history_item_ids  # As the query tower, the tiny ranker ignores it.
      return probability(user_id, timestamp, item_id, 0.0)

    @tf.function(input_signature=ranker_specs + (
        tf.TensorSpec([None, None], tf.string, name="history_queries"),))
    def rank_history_queries(user_id, history_item_ids, timestamp, item_id,
                             history_queries):
      del history_item_ids
      query_count = tf.reduce_sum(tf.cast(
          tf.not_equal(history_queries, ""), tf.float32), axis=1)
      return probability(user_id, timestamp, item_id, query_count)

    return {serving_names.DEFAULT: retrieve.get_concrete_function(),
            "query_embedding": query_embedding.get_concrete_function(),
            RANK_SIGNATURE: rank.get_concrete_function(),
            RANK_QUERIES_SIGNATURE: (
                rank_history_queries.get_concrete_function())}


def export_test_model(directory: str) -> None:
  model = TinyRetrievalModel()
  tf.saved_model.save(model, directory, signatures=model.signatures())


def publish_version(template: pathlib.Path, model_dir: pathlib.Path,
                    version: int,
                    edit: Optional[Callable[[pathlib.Path], None]] = None,
                    ) -> pathlib.Path:
  """Copies `template` to `model_dir/<version>` in one rename, like a push.

  Args:
    template: the SavedModel directory to copy.
    model_dir: the model's directory.
    version: the version number.
    edit: changes the copy before it appears, e.g. to corrupt it.
  """
  staging = model_dir / f".staging-{version}"
  shutil.copytree(template, staging)
  if edit is not None:
    edit(staging)
  return pathlib.Path(shutil.move(staging, model_dir / str(version)))


def truncate_saved_model(version_dir: pathlib.Path) -> None:
  saved_model = version_dir / "saved_model.pb"
  saved_model.write_bytes(saved_model.read_bytes()[:100])


@pytest.fixture(scope="session")
def model_template(tmp_path_factory) -> pathlib.Path:
  directory = tmp_path_factory.mktemp("template") / "model"
  export_test_model(str(directory))
  return directory


@pytest.fixture(scope="session")
def scann_model_template(model_template, tmp_path_factory) -> pathlib.Path:
  directory = tmp_path_factory.mktemp("scann_template") / "model"
  shutil.copytree(model_template, directory)
  scann_index.ScannIndex.build(ITEM_EMBEDDINGS, list(ITEM_IDS)).write(
      str(directory))
  return directory


# --------------------------------------------------------------- servers ---


@dataclasses.dataclass(frozen=True)
class Target:
  """A server under test.

  Attributes:
    address: host:port.
    version: the version of MODEL_NAME it serves.
    ours: whether it is serving.server (so messages can be checked too).
  """
  address: str
  version: int
  ours: bool


def start_local_server(model_base_path: pathlib.Path,
                       **config) -> server.ServerHandle:
  return server.serve(server.ServerConfig(
      model_base_path=str(model_base_path), port=0, poll_interval_s=0.2,
      max_batch_size=MAX_BATCH_SIZE, **config))


def _free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@contextlib.contextmanager
def _tf_serving_process(binary: str, model_dir: pathlib.Path) -> Iterator[str]:
  address = f"127.0.0.1:{_free_port()}"
  process = subprocess.Popen([
      binary, f"--port={address.split(':')[1]}", f"--model_name={MODEL_NAME}",
      f"--model_base_path={model_dir}"])
  try:
    client.wait_until_available(address, MODEL_NAME, timeout_s=60)
    yield address
  finally:
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def target(model_template, tmp_path_factory) -> Iterator[Target]:
  """The one place that picks which server the protocol tests talk to."""
  if _EXTERNAL_ADDRESS:
    yield Target(_EXTERNAL_ADDRESS, version=1, ours=False)
    return
  base = tmp_path_factory.mktemp("models")
  publish_version(model_template, base / MODEL_NAME, 1)
  if _EXTERNAL_BINARY:
    with _tf_serving_process(_EXTERNAL_BINARY, base / MODEL_NAME) as address:
      yield Target(address, version=1, ours=False)
  else:
    with start_local_server(base) as handle:
      yield Target(handle.address, version=1, ours=True)


@dataclasses.dataclass(frozen=True)
class Stubs:
  prediction: prediction_service_pb2_grpc.PredictionServiceStub
  model: model_service_pb2_grpc.ModelServiceStub


@contextlib.contextmanager
def open_stubs(address: str) -> Iterator[Stubs]:
  with grpc.insecure_channel(address) as channel:
    yield Stubs(prediction_service_pb2_grpc.PredictionServiceStub(channel),
                model_service_pb2_grpc.ModelServiceStub(channel))


@pytest.fixture(scope="module")
def stubs(target) -> Iterator[Stubs]:
  with open_stubs(target.address) as opened:
    yield opened


# -------------------------------------------------------------- requests ---


def string_tensor(values) -> tensor_pb2.TensorProto:
  return tf.make_tensor_proto(values, dtype=tf.string)


def predict_request(user_ids=("user_a",), histories=(("item_1", ""),),
                    signature: str = "", version: Optional[int] = None,
                    model_name: str = MODEL_NAME) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = version
  request.inputs["user_id"].CopyFrom(string_tensor(list(user_ids)))
  request.inputs["history_item_ids"].CopyFrom(
      string_tensor([list(history) for history in histories]))
  request.inputs["timestamp"].CopyFrom(
      tf.make_tensor_proto([1_700_000_000] * len(user_ids), dtype=tf.int64))
  return request


def query_embedding(stubs_: Stubs, user_id: str) -> np.ndarray:
  response = stubs_.prediction.Predict(
      predict_request([user_id], [[""]], signature="query_embedding"),
      timeout=10)
  return tf.make_ndarray(response.outputs[serving_names.EMBEDDING])[0]


def brute_force_top_k(query: np.ndarray, k: int, excluded: set[str]):
  scores = ITEM_EMBEDDINGS @ query
  ranked = [i for i in np.argsort(-scores) if ITEM_IDS[i] not in excluded][:k]
  return list(ITEM_IDS[ranked]), scores[ranked]


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
  deadline = time.monotonic() + timeout_s
  while not condition():
    assert time.monotonic() < deadline, "condition not met in time"
    time.sleep(0.05)


def served_version(stubs_: Stubs) -> int:
  return stubs_.prediction.Predict(predict_request(),
                                   timeout=10).model_spec.version.value


def statuses(stubs_: Stubs,
             ) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = MODEL_NAME
  response = stubs_.model.GetModelStatus(request, timeout=10)
  return {status.version: status for status in response.model_version_status}


def assert_rpc_error(call: Callable[[], object], code: grpc.StatusCode,
                     *needles: str) -> None:
  with pytest.raises(grpc.RpcError) as raised:
    call()
  assert raised.value.code() == code, raised.value.details()
  for needle in needles:
    assert needle in raised.value.details()


# ----------------------------------------------------- protocol (shared) ---


def test_predict_returns_top_items_without_history(target, stubs):
  query = query_embedding(stubs, "user_a")
  response = stubs.prediction.Predict(
      predict_request(["user_a"], [["item_1", ""]]), timeout=10)

  expected_ids, expected_scores = brute_force_top_k(query, TOP_K, {"item_1"})
  assert response.model_spec.name == MODEL_NAME
  assert response.model_spec.version.value == target.version
  assert response.model_spec.signature_name == "serving_default"
  assert [i.decode() for i in tf.make_ndarray(response.outputs[serving_names.ITEM_IDS])[0]
          ] == expected_ids
  np.testing.assert_allclose(tf.make_ndarray(response.outputs[serving_names.SCORES])[0],
                             expected_scores, rtol=1e-5)
  # Typed fields, as TF Serving answers; some clients read them directly.
  assert len(response.outputs[serving_names.SCORES].float_val) == TOP_K


def test_predict_honours_output_filter_and_specific_version(target, stubs):
  request = predict_request(["user_a", "user_b"], [[""], ["item_2"]],
                            version=target.version)
  request.output_filter.append("scores")

  response = stubs.prediction.Predict(request, timeout=10)

  assert list(response.outputs) == ["scores"]
  assert response.outputs[serving_names.SCORES].tensor_shape.dim[0].size == 2
  assert response.model_spec.version.value == target.version


def test_get_model_metadata_lists_signatures(target, stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  request.model_spec.name = MODEL_NAME

  response = stubs.prediction.GetModelMetadata(request, timeout=10)

  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  response.metadata["signature_def"].Unpack(signature_defs)
  default = signature_defs.signature_def["serving_default"]
  assert response.model_spec.version.value == target.version
  assert set(default.inputs) == {"user_id", "history_item_ids", "timestamp"}
  assert default.inputs["timestamp"].dtype == types_pb2.DT_INT64
  assert set(default.outputs) == {"item_ids", "scores"}
  assert "query_embedding" in signature_defs.signature_def


def test_get_model_metadata_needs_the_signature_def_field(stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest()
  request.model_spec.name = MODEL_NAME
  assert_rpc_error(lambda: stubs.prediction.GetModelMetadata(request),
                   grpc.StatusCode.INVALID_ARGUMENT)


def test_get_model_status_reports_available_version(target, stubs):
  status = statuses(stubs)[target.version]
  assert status.state == _State.AVAILABLE
  assert status.status.error_code == 0


def test_get_model_status_of_unknown_model_is_not_found(stubs):
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = "no_such_model"
  assert_rpc_error(lambda: stubs.model.GetModelStatus(request),
                   grpc.StatusCode.NOT_FOUND)


def _with_input(name: str, proto: tensor_pb2.TensorProto):
  return lambda request: request.inputs[name].CopyFrom(proto)


def _without_input(name: str):
  return lambda request: request.inputs.pop(name)


def _tensor(dtype: int, dims: list[int], **values) -> tensor_pb2.TensorProto:
  shape = tensor_shape_pb2.TensorShapeProto(
      dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
  return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)


_BAD_REQUESTS = {
    "unknown_model": (
        lambda r: setattr(r.model_spec, "name", "no_such_model"),
        grpc.StatusCode.NOT_FOUND, "no_such_model"),
    "unknown_version": (
        lambda r: r.model_spec.version.CopyFrom(
            wrappers_pb2.Int64Value(value=999)),
        grpc.StatusCode.NOT_FOUND, "999"),
    "version_label": (
        lambda r: setattr(r.model_spec, "version_label", "canary"),
        grpc.StatusCode.INVALID_ARGUMENT, "canary"),
    "missing_model_spec": (
        lambda r: r.ClearField("model_spec"),
        grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec"),
    # TF Serving answers FAILED_PRECONDITION for an unknown signature.
    "unknown_signature": (
        lambda r: setattr(r.model_spec, "signature_name", "no_such_signature"),
        grpc.StatusCode.FAILED_PRECONDITION, "no_such_signature",
        MODEL_NAME),
    "missing_input": (
        _without_input("timestamp"), grpc.StatusCode.INVALID_ARGUMENT,
        "timestamp", MODEL_NAME, "serving_default"),
    "unexpected_input": (
        _with_input("colour", string_tensor(["red"])),
        grpc.StatusCode.INVALID_ARGUMENT, "colour", MODEL_NAME),
    "wrong_dtype": (
        _with_input("timestamp", tf.make_tensor_proto([1.5], tf.float32)),
        grpc.StatusCode.INVALID_ARGUMENT, "timestamp", "DT_FLOAT"),
    "wrong_rank": (
        _with_input("user_id", string_tensor([["user_a"]])),
        grpc.StatusCode.INVALID_ARGUMENT, "user_id", "shape"),
    "more_strings_than_shape": (
        _with_input("user_id", _tensor(types_pb2.DT_STRING, [1],
                                       string_val=[b"a", b"b", b"c"])),
        grpc.StatusCode.INVALID_ARGUMENT, "user_id"),
    "truncated_tensor_content": (
        _with_input("timestamp", _tensor(types_pb2.DT_INT64, [1],
                                         tensor_content=b"\x01\x02\x03")),
        grpc.StatusCode.INVALID_ARGUMENT, "timestamp"),
    "unknown_output": (
        lambda r: r.output_filter.append("no_such_output"),
        grpc.StatusCode.INVALID_ARGUMENT, "no_such_output"),
}


@pytest.mark.parametrize("case", sorted(_BAD_REQUESTS))
def test_bad_request_gets_its_status_and_server_keeps_serving(
    case, target, stubs):
  mutate, code, *needles = _BAD_REQUESTS[case]
  request = predict_request()
  mutate(request)

  assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10), code,
                   *(needles if target.ours else ()))
  assert served_version(stubs) == target.version


# -------------------------------------------------- serving.server's own ---


@local_only
def test_batch_larger_than_max_batch_size_is_refused(stubs):
  batch_size = MAX_BATCH_SIZE + 1
  request = predict_request(["user_a"] * batch_size, [[""]] * batch_size)
  assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, "max_batch_size",
                   MODEL_NAME, "serving_default")


@local_only
def test_batch_limit_leaves_other_dimensions_alone(stubs):
  long_history = ["item_1"] * (MAX_BATCH_SIZE + 1)
  stubs.prediction.Predict(predict_request(histories=[long_history]),
                           timeout=10)


@local_only
def test_huge_declared_shape_is_refused_before_decoding(stubs):
  request = predict_request()
  request.inputs["history_item_ids"].CopyFrom(
      _tensor(types_pb2.DT_STRING, [1, 10**10]))
  assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, "history_item_ids",
                   "elements")


@local_only
def test_unexpected_exception_is_internal_and_server_keeps_serving(
    stubs, monkeypatch):
  def explode(*_):
    raise RuntimeError("boom")

  with monkeypatch.context() as patch:
    patch.setattr(servables.SavedModelSignature, "run", explode)
    assert_rpc_error(lambda: stubs.prediction.Predict(predict_request()),
                     grpc.StatusCode.INTERNAL, "boom")
  assert served_version(stubs) == 1


@local_only
def test_unimplemented_methods_say_so(stubs):
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = MODEL_NAME
  assert_rpc_error(lambda: stubs.prediction.Classify(request),
                   grpc.StatusCode.UNIMPLEMENTED, "Predict")


@local_only
def test_new_version_is_served_and_the_old_one_unloaded(model_template,
                                                         tmp_path):
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  with start_local_server(tmp_path) as handle, open_stubs(
      handle.address) as stubs_:
    assert served_version(stubs_) == 1

    publish_version(model_template, tmp_path / MODEL_NAME, 2)
    wait_for(lambda: served_version(stubs_) == 2)

    wait_for(lambda: statuses(stubs_)[1].state == _State.END)
    assert statuses(stubs_)[2].state == _State.AVAILABLE
    assert_rpc_error(
        lambda: stubs_.prediction.Predict(predict_request(version=1)),
        grpc.StatusCode.NOT_FOUND, "Specific(tiny_retrieval, 1)")

    # Deleting the new version rolls back to the newest one left.
    shutil.rmtree(tmp_path / MODEL_NAME / "2")
    wait_for(lambda: served_version(stubs_) == 1)


@local_only
def test_corrupted_version_is_refused_until_fixed(model_template, tmp_path):
  model_dir = tmp_path / MODEL_NAME
  publish_version(model_template, model_dir, 1)
  with start_local_server(tmp_path) as handle, open_stubs(
      handle.address) as stubs_:
    broken = publish_version(model_template, model_dir, 2,
                             edit=truncate_saved_model)
    wait_for(lambda: 2 in statuses(stubs_))
    wait_for(lambda: statuses(stubs_)[2].state == _State.END)

    assert statuses(stubs_)[2].status.error_message
    assert statuses(stubs_)[1].state == _State.AVAILABLE
    assert served_version(stubs_) == 1

    fixed = broken / "saved_model.pb.new"
    shutil.copy(model_template / "saved_model.pb", fixed)
    os.replace(fixed, broken / "saved_model.pb")
    wait_for(lambda: served_version(stubs_) == 2)


@local_only
def test_concurrent_requests_across_a_version_swap_all_succeed(
    model_template, tmp_path):
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  versions_seen = [[] for _ in range(8)]
  failures = []
  swapped = threading.Event()

  def send_requests(seen: list[int], address: str) -> None:
    deadline = time.monotonic() + 30
    with open_stubs(address) as stubs_:
      while time.monotonic() < deadline and not (
          swapped.is_set() and len(seen) >= 50):
        try:
          seen.append(served_version(stubs_))
        except grpc.RpcError as error:
          failures.append(error)

  with start_local_server(tmp_path) as handle:
    threads = [threading.Thread(target=send_requests,
                                args=(seen, handle.address))
               for seen in versions_seen]
    for thread in threads:
      thread.start()
    wait_for(lambda: sum(map(len, versions_seen)) >= 80)
    publish_version(model_template, tmp_path / MODEL_NAME, 2)
    wait_for(lambda: any(2 in seen for seen in versions_seen))
    swapped.set()
    for thread in threads:
      thread.join(timeout=40)

  assert not failures
  assert all(len(seen) >= 50 for seen in versions_seen)
  assert {1, 2} <= {version for seen in versions_seen for version in seen}
  # One snapshot swap: once a client has seen version 2 it never sees 1.
  assert all(seen == sorted(seen) for seen in versions_seen)


@local_only
def test_every_model_under_the_base_path_is_served(model_template, tmp_path):
  publish_version(model_template, tmp_path / "alpha", 1)
  publish_version(model_template, tmp_path / "beta", 3)
  with start_local_server(tmp_path) as handle, open_stubs(
      handle.address) as stubs_:
    for name, version in (("alpha", 1), ("beta", 3)):
      response = stubs_.prediction.Predict(
          predict_request(model_name=name), timeout=10)
      assert (response.model_spec.name, response.model_spec.version.value
              ) == (name, version)


@local_only
def test_single_model_flags_and_a_base_path_that_appears_later(
    model_template, tmp_path):
  model_dir = tmp_path / "later" / MODEL_NAME
  with start_local_server(model_dir, model_name=MODEL_NAME) as handle, \
      open_stubs(handle.address) as stubs_:
    assert_rpc_error(lambda: served_version(stubs_), grpc.StatusCode.NOT_FOUND,
                     "Latest(tiny_retrieval)")
    model_dir.mkdir(parents=True)
    publish_version(model_template, model_dir, 5)
    wait_for(lambda: handle.loaded_versions() == {MODEL_NAME: [5]})
    assert served_version(stubs_) == 5


@local_only
def test_metrics_count_requests_by_model_signature_and_code(model_template,
                                                            tmp_path):
  parser = pytest.importorskip("prometheus_client.parser")
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  with start_local_server(tmp_path, metrics_port=0) as handle, open_stubs(
      handle.address) as stubs_:
    served_version(stubs_)
    with pytest.raises(grpc.RpcError):
      stubs_.prediction.Predict(predict_request(model_name="made_up"))
    with urllib.request.urlopen(
        f"http://127.0.0.1:{handle.metrics_port}/metrics", timeout=10) as page:
      metrics = page.read().decode()

  counts = {tuple(sorted(sample.labels.items())): sample.value
            for family in parser.text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "vrec_serving_requests_total"}
  ok = dict(model=MODEL_NAME, signature="serving_default", method="Predict",
            code="OK")
  unknown = dict(model="unknown", signature="unknown", method="Predict",
                 code="NOT_FOUND")
  assert counts[tuple(sorted(ok.items()))] == 1
  assert counts[tuple(sorted(unknown.items()))] == 1
  assert "made_up" not in metrics


# ------------------------------------------------------------------ ScaNN ---


@pytest.fixture(scope="module")
def scann_stubs(scann_model_template, tmp_path_factory) -> Iterator[Stubs]:
  base = tmp_path_factory.mktemp("scann_models")
  publish_version(scann_model_template, base / MODEL_NAME, 1)
  with start_local_server(base) as handle, open_stubs(handle.address) as opened:
    yield opened


def scann_request(k=None, exclude=None, **kwargs) -> predict_pb2.PredictRequest:
  request = predict_request(signature="retrieve_scann", **kwargs)
  if k is not None:
    request.inputs["k"].CopyFrom(k if isinstance(k, tensor_pb2.TensorProto)
                                 else tf.make_tensor_proto(k, tf.int32))
  if exclude is not None:
    request.inputs["exclude_item_ids"].CopyFrom(string_tensor(exclude))
  return request


@local_only
def test_retrieve_scann_excludes_history_and_requested_items(scann_stubs):
  query = query_embedding(scann_stubs, "user_a")
  best, second = brute_force_top_k(query, 2, set())[0]

  response = scann_stubs.prediction.Predict(
      scann_request(k=7, exclude=[[second, ""]], histories=[[best, ""]]),
      timeout=10)

  ids = [i.decode() for i in tf.make_ndarray(response.outputs[serving_names.ITEM_IDS])[0]]
  expected_ids, expected_scores = brute_force_top_k(query, 7, {best, second})
  assert response.model_spec.signature_name == "retrieve_scann"
  assert ids == expected_ids
  np.testing.assert_allclose(tf.make_ndarray(response.outputs[serving_names.SCORES])[0],
                             expected_scores, rtol=1e-4, atol=1e-4)


@local_only
def test_retrieve_scann_returns_10_items_by_default(scann_stubs):
  response = scann_stubs.prediction.Predict(
      scann_request(user_ids=["a", "b"], histories=[[""], [""]]), timeout=10)
  assert tf.make_ndarray(response.outputs[serving_names.ITEM_IDS]).shape == (2, 10)


@local_only
@pytest.mark.parametrize("request_, needle", [
    (scann_request(k=0), '"k"'),
    (scann_request(k=len(ITEM_IDS) + 1), '"k"'),
    (scann_request(k=[3, 4]), '"k"'),
    (scann_request(k=tf.make_tensor_proto(3.0, tf.float32)), '"k"'),
    (scann_request(exclude=[["item_1"], ["item_2"]]), "exclude_item_ids"),
], ids=["k_zero", "k_above_items", "k_vector", "k_float", "exclude_rows"])
def test_retrieve_scann_bad_arguments_are_invalid(request_, needle,
                                                  scann_stubs):
  assert_rpc_error(lambda: scann_stubs.prediction.Predict(request_, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, needle, MODEL_NAME,
                   "retrieve_scann")


@local_only
def test_metadata_lists_retrieve_scann(scann_stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  request.model_spec.name = MODEL_NAME
  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  scann_stubs.prediction.GetModelMetadata(request, timeout=10).metadata[
      "signature_def"].Unpack(signature_defs)

  scann = signature_defs.signature_def["retrieve_scann"]
  assert set(scann.inputs) == {"user_id", "history_item_ids", "timestamp", "k",
                               "exclude_item_ids"}
  assert set(scann.outputs) == {"item_ids", "scores"}
  assert scann.method_name == "tensorflow/serving/predict"


# ------------------------------------------------- multi-vector ScaNN ---

# The second vector of each user; the first is USER_EMBEDDINGS.
SECOND_USER_EMBEDDINGS = np.random.default_rng(8).normal(
    size=USER_EMBEDDINGS.shape).astype(np.float32)


class TinyMultiInterestModel(tf.Module):
  """A query tower embedding each user as two vectors, `[batch, 2, 4]`."""

  def __init__(self):
    super().__init__()
    self.user_embeddings = tf.Variable(
        np.stack([USER_EMBEDDINGS, SECOND_USER_EMBEDDINGS], axis=1))

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name="user_id"),
      tf.TensorSpec([None, None], tf.string, name="history_item_ids"),
      tf.TensorSpec([None], tf.int64, name="timestamp")))
  def query_embedding(self, user_id, history_item_ids, timestamp):
    del history_item_ids, timestamp  # The tiny query tower embeds the user.
    users = tf.strings.to_hash_bucket_fast(user_id, len(USER_EMBEDDINGS))
    return {serving_names.EMBEDDING: tf.gather(self.user_embeddings, users)}


@pytest.fixture(scope="session")
def multi_vector_template(tmp_path_factory) -> pathlib.Path:
  """A multi-vector query tower with a ScaNN index of the 24 items."""
  directory = tmp_path_factory.mktemp("multi_vector_template") / "model"
  model = TinyMultiInterestModel()
  tf.saved_model.save(model, str(directory), signatures={
      "query_embedding": model.query_embedding.get_concrete_function()})
  scann_index.ScannIndex.build(ITEM_EMBEDDINGS, list(ITEM_IDS)).write(
      str(directory))
  return directory


@pytest.fixture(scope="module")
def multi_vector_stubs(multi_vector_template,
                       tmp_path_factory) -> Iterator[Stubs]:
  base = tmp_path_factory.mktemp("multi_vector_models")
  publish_version(multi_vector_template, base / MODEL_NAME, 1)
  with start_local_server(base) as handle, open_stubs(handle.address) as opened:
    yield opened


def max_over_vectors_top_k(queries: np.ndarray, k: int, excluded: set[str]):
  scores = (ITEM_EMBEDDINGS @ queries.T).max(axis=1)
  ranked = [i for i in np.argsort(-scores) if ITEM_IDS[i] not in excluded][:k]
  return list(ITEM_IDS[ranked]), scores[ranked]


@local_only
def test_retrieve_scann_merges_the_vectors_of_a_multi_vector_user(
    multi_vector_stubs):
  queries = query_embedding(multi_vector_stubs, "user_a")
  (best, second), _ = max_over_vectors_top_k(queries, 2, set())

  response = multi_vector_stubs.prediction.Predict(
      scann_request(k=7, exclude=[[second, ""]], histories=[[best, ""]]),
      timeout=10)

  ids = [i.decode() for i in tf.make_ndarray(response.outputs[serving_names.ITEM_IDS])[0]]
  expected_ids, expected_scores = max_over_vectors_top_k(queries, 7,
                                                         {best, second})
  assert queries.shape == (2, 4)
  assert ids == expected_ids
  # Neither vector alone ranks these items: the lists were merged.
  for query in queries:
    assert ids != brute_force_top_k(query, 7, {best, second})[0]
  np.testing.assert_allclose(tf.make_ndarray(response.outputs[serving_names.SCORES])[0],
                             expected_scores, rtol=1e-4, atol=1e-4)


@local_only
def test_retrieve_scann_multi_vector_batch_has_k_distinct_items_per_user(
    multi_vector_stubs):
  response = multi_vector_stubs.prediction.Predict(
      scann_request(k=len(ITEM_IDS), user_ids=["a", "b"],
                    histories=[["item_3"], [""]]), timeout=10)
  ids = tf.make_ndarray(response.outputs[serving_names.ITEM_IDS]).astype(str)
  assert ids.shape == (2, len(ITEM_IDS))
  # Every item but the history, once, then padding.
  assert sorted(ids[0][:-1]) == sorted(set(ITEM_IDS) - {"item_3"})
  assert ids[0][-1] == ""
  assert sorted(ids[1]) == sorted(ITEM_IDS)


# ------------------------------------------------------------------- CLI ---


def test_flags_map_onto_the_config():
  config = server.parse_flags([
      "--model_base_path=/models", "--port=0", "--version_policy=latest:2",
      "--file_system_poll_wait_seconds=0.5", "--max_batch_size=16"])
  assert config == server.ServerConfig(
      model_base_path="/models", port=0, poll_interval_s=0.5,
      version_policy=model_registry.VersionPolicy("latest", 2), max_batch_size=16)


def test_help_lists_the_flags(capsys):
  with pytest.raises(SystemExit) as exited:
    server.main(["--help"])
  assert exited.value.code == 0
  assert "--model_base_path" in capsys.readouterr().out


@local_only
def test_cli_serves_until_interrupted(model_template, tmp_path, capsys):
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  address = f"127.0.0.1:{_free_port()}"

  def interrupt_once_serving():
    client.wait_until_available(address, MODEL_NAME, timeout_s=30)
    os.kill(os.getpid(), signal.SIGINT)

  interrupter = threading.Thread(target=interrupt_once_serving, daemon=True)
  interrupter.start()
  assert server.main([f"--model_base_path={tmp_path}",
                      f"--port={address.split(':')[1]}"]) == 0
  interrupter.join(timeout=10)

  out = capsys.readouterr().out
  assert f"Serving gRPC on {address}" in out
  assert "model tiny_retrieval: versions [1]" in out


if __name__ == "__main__":
  # Exports the test model for a real TF Serving (see the module docstring).
  export_test_model(os.path.join(sys.argv[1], MODEL_NAME, "1"))
