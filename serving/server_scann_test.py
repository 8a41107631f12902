"""`retrieve_scann`: the model server's approximate retrieval from the ScaNN
index next to a model, for single- and multi-vector query towers.

`serving.server` only: TF Serving has no such signature.
"""

from __future__ import annotations

from typing import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2

from data import features
from models import serving_names
from serving.testing_grpc import (Stubs, assert_rpc_error, exact_top_k,
                                  local_only, open_stubs, query_embedding,
                                  retrieved, scann_request, serve_version_1)
from serving.testing_models import ITEM_IDS, MODEL_NAME

pytestmark = local_only


@pytest.fixture(scope="module")
def scann_stubs(scann_model_template, tmp_path_factory) -> Iterator[Stubs]:
  with serve_version_1(scann_model_template,
                       tmp_path_factory.mktemp("scann_models")) as handle, \
      open_stubs(handle.address) as opened:
    yield opened


@pytest.fixture(scope="module")
def multi_vector_stubs(multi_vector_template,
                       tmp_path_factory) -> Iterator[Stubs]:
  with serve_version_1(multi_vector_template,
                       tmp_path_factory.mktemp("multi_vector_models")
                       ) as handle, open_stubs(handle.address) as opened:
    yield opened


@pytest.mark.parametrize("served", ["scann_stubs", "multi_vector_stubs"])
def test_retrieve_scann_excludes_history_and_requested_items(served, request):
  stubs = request.getfixturevalue(served)
  queries = query_embedding(stubs, "user_a")
  best, second = exact_top_k(queries, 2, set())[0]

  response = stubs.prediction.Predict(
      scann_request(k=7, exclude=[[second, ""]], histories=[[best, ""]]),
      timeout=10)

  ids, scores = retrieved(response)
  expected_ids, expected_scores = exact_top_k(queries, 7, {best, second})
  assert response.model_spec.signature_name == serving_names.RETRIEVE_SCANN
  assert ids == expected_ids
  np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)


def test_retrieve_scann_merges_the_vectors_of_a_multi_vector_user(
    multi_vector_stubs):
  queries = query_embedding(multi_vector_stubs, "user_a")
  excluded = set(exact_top_k(queries, 2, set())[0])

  ids, _ = retrieved(multi_vector_stubs.prediction.Predict(
      scann_request(k=7, exclude=[sorted(excluded)], histories=[[""]]),
      timeout=10))

  assert queries.shape == (2, 4)
  assert ids == exact_top_k(queries, 7, excluded)[0]
  # Neither vector alone ranks these items: the lists were merged.
  for query in queries:
    assert ids != exact_top_k(query, 7, excluded)[0]


def test_retrieve_scann_filter_seen_false_keeps_the_history(scann_stubs):
  queries = query_embedding(scann_stubs, "user_a")
  best, second = exact_top_k(queries, 2, set())[0]
  request = scann_request(k=5, exclude=[[second]], histories=[[best]])
  request.inputs[serving_names.FILTER_SEEN].CopyFrom(
      tf.make_tensor_proto(False, tf.bool))

  ids, _ = retrieved(scann_stubs.prediction.Predict(request, timeout=10))

  # The history may come back; what the request excludes still may not.
  assert ids == exact_top_k(queries, 5, {second})[0]
  assert best in ids


def test_retrieve_scann_returns_10_items_by_default(scann_stubs):
  response = scann_stubs.prediction.Predict(
      scann_request(user_ids=["a", "b"], histories=[[""], [""]]), timeout=10)
  assert tf.make_ndarray(
      response.outputs[serving_names.ITEM_IDS]).shape == (2, 10)


def _with_filter_seen(value):
  request = scann_request()
  request.inputs[serving_names.FILTER_SEEN].CopyFrom(
      tf.make_tensor_proto(value, tf.bool))
  return request


@pytest.mark.parametrize("request_, needle", [
    (scann_request(k=0), '"k"'),
    (scann_request(k=len(ITEM_IDS) + 1), '"k"'),
    (scann_request(k=[3, 4]), '"k"'),
    (scann_request(k=tf.make_tensor_proto(3.0, tf.float32)), '"k"'),
    (scann_request(exclude=[["item_1"], ["item_2"]]), serving_names.SCANN_EXCLUDE_ITEM_IDS),
    (_with_filter_seen([True, False]), serving_names.FILTER_SEEN),
], ids=["k_zero", "k_above_items", "k_vector", "k_float", "exclude_rows",
        "filter_seen_vector"])
def test_retrieve_scann_bad_arguments_are_invalid(request_, needle,
                                                  scann_stubs):
  assert_rpc_error(lambda: scann_stubs.prediction.Predict(request_, timeout=10),
                   grpc.StatusCode.INVALID_ARGUMENT, needle, MODEL_NAME,
                   serving_names.RETRIEVE_SCANN)


def test_metadata_lists_retrieve_scann(scann_stubs):
  request = get_model_metadata_pb2.GetModelMetadataRequest(
      metadata_field=["signature_def"])
  request.model_spec.name = MODEL_NAME
  signature_defs = get_model_metadata_pb2.SignatureDefMap()
  scann_stubs.prediction.GetModelMetadata(request, timeout=10).metadata[
      "signature_def"].Unpack(signature_defs)

  scann = signature_defs.signature_def[serving_names.RETRIEVE_SCANN]
  assert set(scann.inputs) == {*features.QUERY_RAW_FEATURES, serving_names.SCANN_K,
                               serving_names.SCANN_EXCLUDE_ITEM_IDS,
                               serving_names.FILTER_SEEN}
  assert set(scann.outputs) == {serving_names.ITEM_IDS, serving_names.SCORES}
  assert scann.method_name == "tensorflow/serving/predict"


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
