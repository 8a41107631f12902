"""TF Serving's protocol as the model server speaks it, over real gRPC.

Predict, GetModelMetadata and GetModelStatus, and the status codes of bad
requests. These tests talk to the `target` fixture's server, so they also
check a real TF Serving when VREC_TF_SERVING_ADDRESS or VREC_TF_SERVING_BINARY
is set (see `serving.testing_grpc`); the `local_only` ones check this
server's own request limits and failure handling.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2

from data import features
from models import serving_names
from serving import servables
from serving.testing_grpc import (MAX_BATCH_SIZE, State, assert_rpc_error,
                                  exact_top_k, local_only, predict_request,
                                  query_embedding, retrieved, served_version,
                                  statuses, string_tensor)
from serving.testing_models import MODEL_NAME, TOP_K

def test_predict_returns_top_items_without_history(target, stubs):
  query = query_embedding(stubs, "user_a")
  response = stubs.prediction.Predict(
      predict_request(["user_a"], [["item_1", ""]]), timeout=10)

  expected_ids, expected_scores = exact_top_k(query, TOP_K, {"item_1"})
  assert response.model_spec.name == MODEL_NAME
  assert response.model_spec.version.value == target.version
  assert response.model_spec.signature_name == serving_names.DEFAULT
  ids, scores = retrieved(response)
  assert ids == expected_ids
  np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)
  # Typed fields, as TF Serving answers; some clients read them directly.
  assert len(response.outputs[serving_names.SCORES].float_val) == TOP_K


def test_predict_honours_output_filter_and_specific_version(target, stubs):
  request = predict_request(["user_a", "user_b"], [[""], ["item_2"]],
                            version=target.version)
  request.output_filter.append(serving_names.SCORES)

  response = stubs.prediction.Predict(request, timeout=10)

  assert list(response.outputs) == [serving_names.SCORES]
  assert response.outputs[serving_names.SCORES].tensor_shape.dim[0].size == 2
  assert response.model_spec.version.value == target.version


def test_get_model_metadata_lists_signatures(target, stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  request.model_spec.name = MODEL_NAME

  response = stubs.prediction.GetModelMetadata(request, timeout=10)

  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  response.metadata["signature_def"].Unpack(signature_defs)
  default = signature_defs.signature_def[serving_names.DEFAULT]
  assert response.model_spec.version.value == target.version
  assert set(default.inputs) == set(features.QUERY_RAW_FEATURES)
  assert default.inputs[features.TIMESTAMP].dtype == types_pb2.DT_INT64
  assert set(default.outputs) == {serving_names.ITEM_IDS, serving_names.SCORES}
  assert serving_names.QUERY_EMBEDDING in signature_defs.signature_def


def test_get_model_metadata_needs_the_signature_def_field(stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest()
  request.model_spec.name = MODEL_NAME
  assert_rpc_error(lambda: stubs.prediction.GetModelMetadata(request),
                   grpc.StatusCode.INVALID_ARGUMENT)


def test_get_model_status_reports_available_version(target, stubs):
  status = statuses(stubs)[target.version]
  assert status.state == State.AVAILABLE
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
        _without_input(features.TIMESTAMP), grpc.StatusCode.INVALID_ARGUMENT,
        features.TIMESTAMP, MODEL_NAME, serving_names.DEFAULT),
    "unexpected_input": (
        _with_input("colour", string_tensor(["red"])),
        grpc.StatusCode.INVALID_ARGUMENT, "colour", MODEL_NAME),
    "wrong_dtype": (
        _with_input(features.TIMESTAMP,
                    tf.make_tensor_proto([1.5], tf.float32)),
        grpc.StatusCode.INVALID_ARGUMENT, features.TIMESTAMP, "DT_FLOAT"),
    "wrong_rank": (
        _with_input(features.USER_ID, string_tensor([["user_a"]])),
        grpc.StatusCode.INVALID_ARGUMENT, features.USER_ID, "shape"),
    "more_strings_than_shape": (
        _with_input(features.USER_ID, _tensor(types_pb2.DT_STRING, [1],
                                           string_val=[b"a", b"b", b"c"])),
        grpc.StatusCode.INVALID_ARGUMENT, features.USER_ID),
    "truncated_tensor_content": (
        _with_input(features.TIMESTAMP, _tensor(types_pb2.DT_INT64, [1],
                                             tensor_content=b"\x01\x02\x03")),
        grpc.StatusCode.INVALID_ARGUMENT, features.TIMESTAMP),
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
                   MODEL_NAME, serving_names.DEFAULT)


@local_only
def test_batch_limit_leaves_other_dimensions_alone(stubs):
  long_history = ["item_1"] * (MAX_BATCH_SIZE + 1)
  response = stubs.prediction.Predict(
      predict_request(histories=[long_history]), timeout=10)

  # The history is longer than a batch may be, yet it is answered in full:
  # one row, the top items with the history's item left out.
  expected_ids, _ = exact_top_k(query_embedding(stubs, "user_a"), TOP_K,
                                {"item_1"})
  assert response.outputs[serving_names.ITEM_IDS].tensor_shape.dim[0].size == 1
  assert retrieved(response)[0] == expected_ids


@local_only
def test_huge_declared_shape_is_refused_before_decoding(stubs):
  request = predict_request()
  request.inputs[features.HISTORY_ITEM_IDS].CopyFrom(
      _tensor(types_pb2.DT_STRING, [1, 10**10]))
  assert_rpc_error(lambda: stubs.prediction.Predict(request, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, features.HISTORY_ITEM_IDS,
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


