"""The model server under faults: a version swap under load and fuzzed requests.

Against `serving.server` in this process, over loopback gRPC, on the tiny
model of `serving.testing_models`. The swap test writes its numbers to
$VREC_SWAP_TEST_RESULTS (benchmarks/results/swap_test.json holds a recorded
run). A corrupted new version (truncated `saved_model.pb`) being refused
while the old one keeps serving is covered by
serving/server_versions_test.py::test_corrupted_version_is_refused_until_fixed.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import os
import pathlib
import random
import shutil
import threading
import time
from typing import Callable, Iterator, Optional

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2

from models import serving_names
from serving import testing_models
from serving.testing_grpc import (POLL_INTERVAL_S, open_stubs,
                                  predict_request, publish_version,
                                  serve_version_1, start_local_server,
                                  wait_for)
from serving.testing_models import MODEL_NAME, TOP_K

SWAP_REQUESTS = 10_000
SWAP_CONCURRENCY = 16
# The new version is pushed once this share of the requests is answered.
SWAP_AT = 0.2
SWAP_BUDGET_S = 120
# Where the swap test writes its numbers; by default a temporary file, so that
# running the suite leaves the checkout unchanged.
RESULTS_PATH_ENV_VAR = "VREC_SWAP_TEST_RESULTS"

SCORER_NAME = "tiny_scorer"
FUZZ_REQUESTS = 500
FUZZ_CONCURRENCY = 4
FUZZ_SEED = 20240611
MAX_FUZZ_STRING_BYTES = 3 * 1024 * 1024
ACCEPTABLE_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def model_template(tmp_path_factory) -> pathlib.Path:
  directory = tmp_path_factory.mktemp("template") / "model"
  testing_models.export_tiny_model(str(directory))
  return directory


# ------------------------------------------------------------ swap test ---


@dataclasses.dataclass(frozen=True)
class Outcome:
  """One request: when it started and ended (monotonic s), and what came."""
  started: float
  ended: float
  version: Optional[int]
  error: Optional[str]

  @property
  def latency_ms(self) -> float:
    return (self.ended - self.started) * 1000


def _send(address: str, count: int, stop_at: float,
          outcomes: list[Outcome]) -> None:
  # Built once: encoding tensors in Python would cost more than serving them.
  request = predict_request()
  with open_stubs(address) as stubs:
    for _ in range(count):
      if time.monotonic() > stop_at:
        return
      started = time.monotonic()
      try:
        response = stubs.prediction.Predict(request, timeout=10)
        outcomes.append(Outcome(started, time.monotonic(),
                                response.model_spec.version.value, None))
      except grpc.RpcError as error:
        outcomes.append(Outcome(started, time.monotonic(), None,
                                f"{error.code().name}: {error.details()}"))


def _latency(outcomes: list[Outcome]) -> dict:
  latencies = [outcome.latency_ms for outcome in outcomes]
  return {"requests": len(latencies),
          "p50_ms": round(float(np.percentile(latencies, 50)), 2),
          "p99_ms": round(float(np.percentile(latencies, 99)), 2)}


def _swap_report(outcomes: list[Outcome], began: float, pushed: float,
                 removed: float, ended: float) -> dict:
  """The numbers benchmarks/README.md quotes; times in s after the push."""
  window_end = removed + 2 * POLL_INTERVAL_S
  in_window = [o for o in outcomes if pushed <= o.started <= window_end]
  old = [o.ended for o in outcomes if o.version == 1]
  new = [o.ended for o in outcomes if o.version == 2]
  return {
      "requests": len(outcomes),
      "concurrency": SWAP_CONCURRENCY,
      "failed": sum(o.error is not None for o in outcomes),
      "responses_by_version": {"1": len(old), "2": len(new)},
      "wall_s": round(ended - began, 2),
      "requests_per_s": round(len(outcomes) / (ended - began), 1),
      "latency_overall": _latency(outcomes),
      "latency_swap_window": _latency(in_window),
      "swap_window": "from the push to two polls after the old version's "
                     "directory was removed",
      "pushed_after_s": round(pushed - began, 2),
      "first_new_version_response_after_push_s": round(min(new) - pushed, 3),
      "last_old_version_response_after_push_s": round(max(old) - pushed, 3),
      "old_version_removed_after_push_s": round(removed - pushed, 3),
      "poll_interval_s": POLL_INTERVAL_S,
      "cpus": os.cpu_count(),
      "setup": "in-process server and client threads on one host; the tiny "
               "24-item model of serving/testing_models.py",
  }


def test_version_swap_under_load_drops_no_request(model_template, tmp_path):
  base = tmp_path / "models"
  outcomes: list[Outcome] = []
  with serve_version_1(model_template, base) as handle:
    began = time.monotonic()
    stop_at = began + SWAP_BUDGET_S
    senders = [threading.Thread(
        target=_send, args=(handle.address, SWAP_REQUESTS // SWAP_CONCURRENCY,
                            stop_at, outcomes))
               for _ in range(SWAP_CONCURRENCY)]
    for sender in senders:
      sender.start()
    wait_for(lambda: len(outcomes) >= SWAP_REQUESTS * SWAP_AT, timeout_s=60)
    pushed = time.monotonic()
    publish_version(model_template, base / MODEL_NAME, 2)
    wait_for(lambda: any(o.version == 2 for o in outcomes), timeout_s=60)
    shutil.rmtree(base / MODEL_NAME / "1")
    removed = time.monotonic()
    for sender in senders:
      sender.join(timeout=SWAP_BUDGET_S)
    ended = time.monotonic()
    assert handle.loaded_versions() == {MODEL_NAME: [2]}

  report = _swap_report(outcomes, began, pushed, removed, ended)
  results_path = pathlib.Path(os.environ.get(RESULTS_PATH_ENV_VAR,
                                            tmp_path / "swap_test.json"))
  results_path.parent.mkdir(parents=True, exist_ok=True)
  results_path.write_text(json.dumps(report, indent=2) + "\n")
  errors = collections.Counter(o.error for o in outcomes if o.error)
  assert report["failed"] == 0, errors.most_common(5)
  assert len(outcomes) == SWAP_REQUESTS
  assert outcomes[-1].version == 2 and report["responses_by_version"]["1"] > 0
  # One snapshot swap: a request sent after a new-version answer arrived
  # never gets the old version.
  first_new = min(o.ended for o in outcomes if o.version == 2)
  assert all(o.version == 2 for o in outcomes if o.started > first_new)


# ------------------------------------------------------------ fuzz test ---


class TinyScorer(tf.Module):
  """A float model, so that NaN and inf reach a graph."""

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32,
                                              name="x")])
  def score(self, x):
    return {"total": tf.reduce_sum(x, axis=1), "scaled": 2.0 * x}


@pytest.fixture(scope="module")
def fuzz_server(model_template, tmp_path_factory):
  """Serves the retrieval model with a ScaNN index, and the float scorer."""
  base = tmp_path_factory.mktemp("fuzz_models")
  retrieval = publish_version(model_template, base / MODEL_NAME, 1)
  testing_models.write_tiny_scann_index(str(retrieval))
  scorer = TinyScorer()
  tf.saved_model.save(scorer, str(base / SCORER_NAME / "3"),
                      signatures={serving_names.DEFAULT: scorer.score})
  with start_local_server(base, max_batch_size=64,
                          metrics_port=0) as handle:
    yield handle


_ALL_DTYPES = sorted(types_pb2.DataType.values()) + [9999]
_SIGNATURES = ("", serving_names.DEFAULT, serving_names.QUERY_EMBEDDING,
               serving_names.RETRIEVE_SCANN, "__saved_model_init_op",
               "no_such_signature", "..", "é" * 3)
_MODEL_NAMES = (MODEL_NAME, SCORER_NAME, "", ".", "..", "../" + MODEL_NAME,
                "/etc/passwd", "a/b", "tiny retrieval", "x" * 300, "mödel",
                "nul\x00name", "unknown_model")
_FLOATS = (0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 3.4e38,
           1e-45)


def _shape(dims: list[int], unknown_rank: bool = False,
           ) -> tensor_shape_pb2.TensorShapeProto:
  return tensor_shape_pb2.TensorShapeProto(
      dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims],
      unknown_rank=unknown_rank)


def _random_dims(rng: random.Random) -> list[int]:
  return rng.choice([
      [], [0], [0, 0], [1], [3], [2, 5], [1, 0], [0, 7],
      [1, 10**9], [10**12], [2**62, 2], [-1], [-5, 3], [1, 1, 1, 1],
      [rng.randint(0, 40), rng.randint(0, 40)], [rng.randint(1, 64)],
  ])


def _short_bytes(rng: random.Random) -> bytes:
  return rng.randbytes(rng.choice([0, 1, 10, 1000]))


def _random_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
  """A TensorProto that may lie about its dtype, shape and contents."""
  proto = tensor_pb2.TensorProto(
      dtype=rng.choice(_ALL_DTYPES),
      tensor_shape=_shape(_random_dims(rng), unknown_rank=rng.random() < 0.05))
  filler = rng.randrange(5)
  if filler == 0:
    proto.tensor_content = rng.randbytes(rng.choice([0, 3, 8, 64, 4096]))
  elif filler == 1:
    proto.string_val.extend(_short_bytes(rng) for _ in range(rng.randint(0, 4)))
  elif filler == 2:
    proto.float_val.extend(rng.choice(_FLOATS)
                           for _ in range(rng.randint(0, 8)))
  elif filler == 3:
    proto.int64_val.extend(rng.randint(-2**63, 2**63 - 1)
                           for _ in range(rng.randint(0, 8)))
  return proto


def _float_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
  rows, columns = rng.randint(0, 6), rng.randint(0, 6)
  values = np.array([rng.choice(_FLOATS) for _ in range(rows * columns)],
                    np.float32).reshape(rows, columns)
  return tf.make_tensor_proto(values)


def _string_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
  """Well-formed strings of a random rank-1 or rank-2 shape."""
  dims = rng.choice([[rng.randint(0, 4)], [rng.randint(0, 4),
                                           rng.randint(0, 4)]])
  values = np.array([_short_bytes(rng) for _ in range(int(np.prod(dims)))],
                    dtype=object).reshape(dims)
  return tf.make_tensor_proto(values, dtype=tf.string)


def _an_input(request: predict_pb2.PredictRequest, rng: random.Random) -> str:
  return rng.choice(sorted(request.inputs) or ["x"])


def _set_model_name(request, rng):
  request.model_spec.name = rng.choice(_MODEL_NAMES)


def _set_huge_model_name(request, rng):
  request.model_spec.name = "m" * rng.randint(256, MAX_FUZZ_STRING_BYTES)


def _set_signature(request, rng):
  request.model_spec.signature_name = rng.choice(_SIGNATURES)


def _set_version(request, rng):
  request.model_spec.version.value = rng.choice([0, -1, 1, 3, 2**63 - 1])


def _set_version_label(request, rng):
  del rng  # Labels are refused whatever they say.
  request.model_spec.version_label = "canary"


def _drop_input(request, rng):
  request.inputs.pop(_an_input(request, rng), None)


def _add_input(request, rng):
  name = rng.choice(["extra", serving_names.SCANN_K,
                     serving_names.SCANN_EXCLUDE_ITEM_IDS, ""])
  request.inputs[name].CopyFrom(_random_tensor(rng))


def _garble_input(request, rng):
  request.inputs[_an_input(request, rng)].CopyFrom(_random_tensor(rng))


def _float_input(request, rng):
  request.inputs[_an_input(request, rng)].CopyFrom(_float_tensor(rng))


def _string_input(request, rng):
  request.inputs[_an_input(request, rng)].CopyFrom(_string_tensor(rng))


def _huge_string_input(request, rng):
  huge = rng.randbytes(rng.randint(1, MAX_FUZZ_STRING_BYTES))
  request.inputs[_an_input(request, rng)].CopyFrom(
      tf.make_tensor_proto([huge], dtype=tf.string))


def _set_k(request, rng):
  request.inputs[serving_names.SCANN_K].CopyFrom(tf.make_tensor_proto(
      rng.choice([0, 1, 5, 24, 25, -3, 2**31 - 1]), tf.int32))


def _filter_outputs(request, rng):
  request.output_filter.extend(rng.choice(
      [[serving_names.SCORES], ["nope"],
       [serving_names.SCORES, serving_names.SCORES],
       [serving_names.EMBEDDING], ["total"]]))


def _drop_model_spec(request, rng):
  del rng  # There is one way to have no model spec.
  request.ClearField("model_spec")


_MUTATIONS = (_set_model_name, _set_huge_model_name, _set_signature,
              _set_version, _set_version_label, _drop_input, _add_input,
              _garble_input, _garble_input, _float_input, _string_input,
              _huge_string_input, _set_k, _filter_outputs, _drop_model_spec)


def _valid_request(rng: random.Random) -> predict_pb2.PredictRequest:
  if rng.random() < 0.3:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = SCORER_NAME
    request.inputs["x"].CopyFrom(_float_tensor(rng))
    return request
  return predict_request(signature=rng.choice(
      ["", serving_names.QUERY_EMBEDDING, serving_names.RETRIEVE_SCANN]))


def fuzzed_requests(seed: int, count: int,
                    ) -> Iterator[predict_pb2.PredictRequest]:
  """`count` seeded requests: a valid one spoiled by 0-3 random mutations.

  Made one at a time, as a few carry megabytes.
  """
  rng = random.Random(seed)
  for _ in range(count):
    request = _valid_request(rng)
    for mutate in rng.sample(_MUTATIONS, rng.randint(0, 3)):
      mutate(request, rng)
    yield request


def _metadata_and_status_calls(stubs, request) -> list[Callable[[], object]]:
  metadata = get_model_metadata_pb2.GetModelMetadataRequest(
      model_spec=request.model_spec, metadata_field=["signature_def"])
  status = get_model_status_pb2.GetModelStatusRequest(
      model_spec=request.model_spec)
  return [lambda: stubs.prediction.GetModelMetadata(metadata, timeout=30),
          lambda: stubs.model.GetModelStatus(status, timeout=30)]


def _code_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
  try:
    call()
  except grpc.RpcError as error:
    return error.code(), error.details() or ""
  return grpc.StatusCode.OK, ""


def _calls(stubs, requests: Iterator[predict_pb2.PredictRequest],
           ) -> Iterator[Callable[[], object]]:
  for number, request in enumerate(requests):
    yield lambda r=request: stubs.prediction.Predict(r, timeout=30)
    # Every tenth request's model spec also goes to the other two RPCs.
    if number % 10 == 0:
      yield from _metadata_and_status_calls(stubs, request)


def test_fuzzed_requests_get_proper_status_codes(fuzz_server):
  codes = collections.Counter()
  unacceptable = []
  with open_stubs(fuzz_server.address) as stubs, \
      concurrent.futures.ThreadPoolExecutor(FUZZ_CONCURRENCY) as pool:
    calls = _calls(stubs, fuzzed_requests(FUZZ_SEED, FUZZ_REQUESTS))
    while batch := list(itertools.islice(calls, FUZZ_CONCURRENCY)):
      for code, details in pool.map(_code_of, batch):
        codes[code.name] += 1
        if code not in ACCEPTABLE_CODES:
          unacceptable.append((code.name, details[:300]))

    assert stubs.prediction.Predict(predict_request(), timeout=10).outputs[
        serving_names.ITEM_IDS].tensor_shape.dim[1].size == TOP_K
  print(f"fuzz status codes: {dict(codes)}")
  assert codes["OK"] > 0 and codes["INVALID_ARGUMENT"] > 0, codes
  assert not unacceptable, (dict(codes), unacceptable[:10])
