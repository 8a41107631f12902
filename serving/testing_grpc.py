"""Helpers for tests of the model server and its client, over real gRPC.

By default the tests talk to `serving.server` in their own process
(`start_local_server`) on the tiny models of `serving.testing_models`. The
protocol tests also hold for the real TF Serving; the `target` fixture of
`serving/conftest.py` talks to one when either of these is set:

- VREC_TF_SERVING_BINARY=/path/to/tensorflow_model_server: the fixture starts
  that binary on the tiny model (`tf_serving_process`);
- VREC_TF_SERVING_ADDRESS=host:port: a running server that already serves
  the tiny model as "tiny_retrieval", exported with
  `python -m serving.testing_models DIR` and served with
  `--model_name=tiny_retrieval --model_base_path=DIR/tiny_retrieval`.

Tests of this server's own features (ScaNN, version swaps, limits, metrics)
are marked `local_only` and then skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import socket
import subprocess
import time
from typing import Callable, Iterator, Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from data import features
from models import serving_names
from serving import client
from serving import server
from serving.testing_models import ITEM_EMBEDDINGS, ITEM_IDS, MODEL_NAME

EXTERNAL_ADDRESS = os.environ.get("VREC_TF_SERVING_ADDRESS")
EXTERNAL_BINARY = os.environ.get("VREC_TF_SERVING_BINARY")
local_only = pytest.mark.skipif(
    bool(EXTERNAL_ADDRESS or EXTERNAL_BINARY),
    reason="tests serving.server's own features, not the TF Serving protocol")

MAX_BATCH_SIZE = 8
# Short, so that tests of version changes do not wait long for a scan.
POLL_INTERVAL_S = 0.2
State = get_model_status_pb2.ModelVersionStatus.State


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
                       max_batch_size: int = MAX_BATCH_SIZE,
                       **config) -> server.ServerHandle:
  """`serving.server` on a free loopback port, polling every 0.2 s."""
  return server.serve(server.ServerConfig(
      model_base_path=str(model_base_path), port=0,
      poll_interval_s=POLL_INTERVAL_S, max_batch_size=max_batch_size,
      **config))


@contextlib.contextmanager
def serve_version_1(template: pathlib.Path, model_base_path: pathlib.Path,
                    **config) -> Iterator[server.ServerHandle]:
  """Pushes `template` as version 1 of MODEL_NAME, then serves it."""
  publish_version(template, model_base_path / MODEL_NAME, 1)
  with start_local_server(model_base_path, **config) as handle:
    yield handle


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@contextlib.contextmanager
def tf_serving_process(binary: str, model_dir: pathlib.Path) -> Iterator[str]:
  """Runs TF Serving's `binary` on `model_dir` as MODEL_NAME; its address."""
  address = f"127.0.0.1:{free_port()}"
  process = subprocess.Popen([
      binary, f"--port={address.split(':')[1]}", f"--model_name={MODEL_NAME}",
      f"--model_base_path={model_dir}"])
  try:
    client.wait_until_available(address, MODEL_NAME, timeout_s=60)
    yield address
  finally:
    process.terminate()
    process.wait(timeout=30)


# -------------------------------------------------------------- versions ---


def publish_version(template: pathlib.Path, model_dir: pathlib.Path,
                    version: int,
                    edit: Optional[Callable[[pathlib.Path], None]] = None,
                    ) -> pathlib.Path:
  """Copies `template` to `model_dir/<version>` in one rename, like a push.

  The copy is staged under a name that is not a version, so the server never
  sees a half-written one.

  Args:
    template: the SavedModel directory to copy.
    model_dir: the model's directory; created if missing.
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


# -------------------------------------------------------------- requests ---


@dataclasses.dataclass(frozen=True)
class Stubs:
  prediction: prediction_service_pb2_grpc.PredictionServiceStub
  model: model_service_pb2_grpc.ModelServiceStub


@contextlib.contextmanager
def open_stubs(address: str) -> Iterator[Stubs]:
  with grpc.insecure_channel(address) as channel:
    yield Stubs(prediction_service_pb2_grpc.PredictionServiceStub(channel),
                model_service_pb2_grpc.ModelServiceStub(channel))


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
  request.inputs[features.USER_ID].CopyFrom(string_tensor(list(user_ids)))
  request.inputs[features.HISTORY_ITEM_IDS].CopyFrom(
      string_tensor([list(history) for history in histories]))
  request.inputs[features.TIMESTAMP].CopyFrom(
      tf.make_tensor_proto([1_700_000_000] * len(user_ids), dtype=tf.int64))
  return request


def scann_request(k=None, exclude=None, **kwargs) -> predict_pb2.PredictRequest:
  """A `retrieve_scann` request; `k` a number or a ready TensorProto."""
  request = predict_request(signature=serving_names.RETRIEVE_SCANN, **kwargs)
  if k is not None:
    request.inputs[serving_names.SCANN_K].CopyFrom(
        k if isinstance(k, tensor_pb2.TensorProto)
        else tf.make_tensor_proto(k, tf.int32))
  if exclude is not None:
    request.inputs[serving_names.SCANN_EXCLUDE_ITEM_IDS].CopyFrom(string_tensor(exclude))
  return request


# --------------------------------------------------------------- answers ---


def query_embedding(stubs: Stubs, user_id: str) -> np.ndarray:
  """The served query embedding of `user_id`: `[dim]` or `[K, dim]`."""
  response = stubs.prediction.Predict(
      predict_request([user_id], [[""]],
                      signature=serving_names.QUERY_EMBEDDING), timeout=10)
  return tf.make_ndarray(response.outputs[serving_names.EMBEDDING])[0]


def retrieved(response: predict_pb2.PredictResponse,
              ) -> tuple[list[str], np.ndarray]:
  """The item ids and scores a retrieve signature answered for row 0."""
  return ([item_id.decode() for item_id in tf.make_ndarray(
      response.outputs[serving_names.ITEM_IDS])[0]],
          tf.make_ndarray(response.outputs[serving_names.SCORES])[0])


def exact_top_k(queries: np.ndarray, k: int, excluded: set[str]):
  """Ids and scores of the best `k` tiny items not in `excluded`.

  Args:
    queries: one query vector, or a multi-vector user's `[K, dim]`, whose
      score for an item is the max over its vectors.
    k: how many items.
    excluded: ids never to return.
  """
  scores = (ITEM_EMBEDDINGS @ np.atleast_2d(queries).T).max(axis=1)
  ranked = [i for i in np.argsort(-scores) if ITEM_IDS[i] not in excluded][:k]
  return list(ITEM_IDS[ranked]), scores[ranked]


def served_version(stubs: Stubs) -> int:
  return stubs.prediction.Predict(predict_request(),
                                  timeout=10).model_spec.version.value


def statuses(stubs: Stubs,
             ) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = MODEL_NAME
  response = stubs.model.GetModelStatus(request, timeout=10)
  return {status.version: status for status in response.model_version_status}


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
  deadline = time.monotonic() + timeout_s
  while not condition():
    assert time.monotonic() < deadline, "condition not met in time"
    time.sleep(0.05)


def assert_rpc_error(call: Callable[[], object], code: grpc.StatusCode,
                     *needles: str) -> None:
  """`call` fails with `code`, and its details hold every needle."""
  with pytest.raises(grpc.RpcError) as raised:
    call()
  assert raised.value.code() == code, raised.value.details()
  for needle in needles:
    assert needle in raised.value.details()
