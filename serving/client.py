"""A small client for retrieval and ranking models behind TF Serving's gRPC API.

Works against `serving.server` and a real `tensorflow_model_server` alike
(except `retrieve_scann`, which only `serving.server` offers).

    python -m serving.client --address 127.0.0.1:8500 --model_name retrieval \\
        --user_id u1 --history i1,i2 --k 5 --signature retrieve_scann

A ranker (families `ranking` and `seminar`) scores given candidates; the
history's search queries, if any, go with `--history_queries`:

    python -m serving.client --model_name ranker --user_id u1 \\
        --history i1,i2 --history_queries "red apples|" --rank_items i3,i4
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Optional, Sequence

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from data import features
from models import serving_names

# Separates the queries of `--history_queries`: queries hold spaces and
# commas, and "" (no query) must stay expressible.
QUERY_SEPARATOR = "|"
DEFAULT_TIMEOUT_S = 10.0
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Answers that mean "not there yet": the server is starting or loading.
_RETRIABLE_CODES = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED)
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.AVAILABLE


@dataclasses.dataclass(frozen=True)
class Recommendations:
  """Top items for one user, best first.

  Attributes:
    model_version: the version that answered.
    item_ids: recommended ids.
    scores: their scores.
    history_source: where the server found the user's history when the
      request sent none (`serving_names.HISTORY_FROM_STORE` or
      `HISTORY_COLD_START`); None when the request carried it.
  """
  model_version: int
  item_ids: list[str]
  scores: list[float]
  history_source: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class RankedItems:
  """Candidates scored by a ranker for one user, most probable first.

  Attributes:
    model_version: the version that answered.
    item_ids: the candidate ids.
    probabilities: their click probabilities.
  """
  model_version: int
  item_ids: list[str]
  probabilities: list[float]


def _channel(address: str) -> grpc.Channel:
  return grpc.insecure_channel(
      address, options=[("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                        ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)])


def retrieval_request(model_name: str, user_id: str,
                      history: Optional[Sequence[str]], timestamp: int,
                      k: int = 10, signature: str = serving_names.DEFAULT,
                      exclude_item_ids: Sequence[str] = (),
                      filter_seen: bool = True,
                      ) -> predict_pb2.PredictRequest:
  """A one-user PredictRequest for a retrieval signature.

  Args:
    model_name: the served model.
    user_id: the user.
    history: item ids the user interacted with, oldest first; None sends
      none, for a server with a history store to read it there.
    timestamp: request time, in the training data's unit (seconds).
    k: items wanted; only sent to `retrieve_scann`, the other signatures
      have a fixed k.
    signature: `serving_default`, `retrieve_top10`, `retrieve_top100` or
      `retrieve_scann`.
    exclude_item_ids: more ids never to return (`retrieve_scann` only).
    filter_seen: False lets `retrieve_scann` return the user's history items.

  Raises:
    ValueError: for exclusions or `filter_seen` with a signature that cannot
      take them.
  """
  if ((exclude_item_ids or not filter_seen)
      and signature != serving_names.RETRIEVE_SCANN):
    raise ValueError("exclude_item_ids and filter_seen need the "
                     f"{serving_names.RETRIEVE_SCANN} signature")
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  request.inputs[features.USER_ID].CopyFrom(
      tf.make_tensor_proto([user_id], dtype=tf.string))
  if history is not None:
    # One "" keeps the tensor non-empty; the model drops "" as padding.
    request.inputs[features.HISTORY_ITEM_IDS].CopyFrom(
        tf.make_tensor_proto([list(history) or [""]], dtype=tf.string))
  request.inputs[features.TIMESTAMP].CopyFrom(
      tf.make_tensor_proto([timestamp], dtype=tf.int64))
  if signature == serving_names.RETRIEVE_SCANN:
    request.inputs[serving_names.SCANN_K].CopyFrom(
        tf.make_tensor_proto(k, dtype=tf.int32))
    if not filter_seen:
      request.inputs[serving_names.FILTER_SEEN].CopyFrom(
          tf.make_tensor_proto(False, dtype=tf.bool))
    if exclude_item_ids:
      request.inputs[serving_names.SCANN_EXCLUDE_ITEM_IDS].CopyFrom(
          tf.make_tensor_proto([list(exclude_item_ids)], dtype=tf.string))
  return request


def ranking_signature(history_queries: Optional[Sequence[str]]) -> str:
  """The ranker signature a request takes by default."""
  return (serving_names.DEFAULT if history_queries is None
          else serving_names.RANKER_HISTORY_QUERIES)


def ranking_request(model_name: str, user_id: str, item_ids: Sequence[str],
                    history: Sequence[str], timestamp: int,
                    history_queries: Optional[Sequence[str]] = None,
                    signature: Optional[str] = None,
                    ) -> predict_pb2.PredictRequest:
  """A PredictRequest scoring one user's candidates with a ranker export.

  One row per candidate, each with the user's whole history, as the
  ranker's `serving_default` takes them.

  Args:
    model_name: the served model.
    user_id: the user.
    item_ids: the candidates to score.
    history: item ids the user interacted with, oldest first.
    timestamp: request time, in the training data's unit (seconds).
    history_queries: the search query of each history item ("" for none);
      None sends no queries.
    signature: defaults to `ranking_signature(history_queries)`.

  Raises:
    ValueError: without candidates, or when the queries do not align with
      the history.
  """
  if not item_ids:
    raise ValueError("no candidate item ids to rank")
  if history_queries is not None and len(history_queries) != len(history):
    raise ValueError(
        f"{len(history_queries)} history queries for {len(history)} history "
        "items: give one per item, \"\" where there was none")
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature or ranking_signature(
      history_queries)
  rows = len(item_ids)
  inputs = {
      features.USER_ID: ([user_id] * rows, tf.string),
      features.ITEM_ID: (list(item_ids), tf.string),
      # One "" keeps the tensor non-empty; the model drops "" as padding.
      features.HISTORY_ITEM_IDS: ([list(history) or [""]] * rows, tf.string),
      features.TIMESTAMP: ([timestamp] * rows, tf.int64)}
  if history_queries is not None:
    inputs[features.HISTORY_QUERIES] = (
        [list(history_queries) or [""]] * rows, tf.string)
  for name, (values, dtype) in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
  return request


def _predict(address: str, request: predict_pb2.PredictRequest,
             timeout_s: float) -> predict_pb2.PredictResponse:
  with _channel(address) as channel:
    return prediction_service_pb2_grpc.PredictionServiceStub(
        channel).Predict(request, timeout=timeout_s)


def rank(address: str, model_name: str, user_id: str,
         item_ids: Sequence[str], history: Sequence[str] = (),
         history_queries: Optional[Sequence[str]] = None,
         timestamp: Optional[int] = None, signature: Optional[str] = None,
         timeout_s: float = DEFAULT_TIMEOUT_S) -> RankedItems:
  """Asks a served ranker for the click probability of each candidate.

  Args:
    address: host:port of the gRPC server.
    model_name: the served model.
    user_id: the user.
    item_ids: the candidates to score.
    history: item ids the user interacted with, oldest first.
    history_queries: see `ranking_request`.
    timestamp: request time in seconds; now when None.
    signature: see `ranking_request`.
    timeout_s: gRPC deadline.

  Returns:
    The candidates, most probable first.

  Raises:
    ValueError: see `ranking_request`.
    grpc.RpcError: with the server's status code and message.
  """
  response = _predict(address, ranking_request(
      model_name, user_id, item_ids, history,
      int(time.time()) if timestamp is None else timestamp, history_queries,
      signature), timeout_s)
  probabilities = tf.make_ndarray(
      response.outputs[serving_names.RANKER_PROBABILITY]).reshape(-1)
  ranked = sorted(zip(item_ids, probabilities.tolist()),
                  key=lambda pair: -pair[1])
  return RankedItems(response.model_spec.version.value,
                     [item_id for item_id, _ in ranked],
                     [probability for _, probability in ranked])


def recommend(address: str, model_name: str, user_id: str,
              history: Optional[Sequence[str]] = (),
              timestamp: Optional[int] = None, k: int = 10,
              signature: str = serving_names.DEFAULT,
              exclude_item_ids: Sequence[str] = (), filter_seen: bool = True,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> Recommendations:
  """Asks a served retrieval model for one user's top items.

  Args:
    address: host:port of the gRPC server.
    model_name: the served model.
    user_id: the user.
    history: item ids the user interacted with; never recommended back.
      None: the server reads it from its history store.
    timestamp: request time in seconds; now when None.
    k: at most this many items are returned.
    signature: see `retrieval_request`.
    exclude_item_ids: more ids never to return (`retrieve_scann` only).
    filter_seen: see `retrieval_request`.
    timeout_s: gRPC deadline.

  Returns:
    The top items, padding ("" ids) dropped.

  Raises:
    grpc.RpcError: with the server's status code and message.
  """
  response = _predict(address, retrieval_request(
      model_name, user_id, history,
      int(time.time()) if timestamp is None else timestamp, k, signature,
      exclude_item_ids, filter_seen), timeout_s)
  item_ids = tf.make_ndarray(response.outputs[serving_names.ITEM_IDS])[0][:k]
  scores = tf.make_ndarray(response.outputs[serving_names.SCORES])[0][:k]
  kept = [(item_id.decode(), float(score))
          for item_id, score in zip(item_ids, scores) if item_id]
  source = None
  if serving_names.HISTORY_SOURCE in response.outputs:
    source = tf.make_ndarray(
        response.outputs[serving_names.HISTORY_SOURCE])[0].decode()
  return Recommendations(response.model_spec.version.value,
                         [item_id for item_id, _ in kept],
                         [score for _, score in kept], source)


def events_request(user_ids: Sequence[str], item_ids: Sequence[str],
                   timestamps: Optional[Sequence[int]] = None,
                   ) -> predict_pb2.PredictRequest:
  """The `AppendEvents` request for events `(user_ids[i], item_ids[i])`;
  without timestamps the server's clock stamps them."""
  request = predict_pb2.PredictRequest()
  request.inputs[features.USER_ID].CopyFrom(
      tf.make_tensor_proto(list(user_ids), dtype=tf.string))
  request.inputs[features.ITEM_ID].CopyFrom(
      tf.make_tensor_proto(list(item_ids), dtype=tf.string))
  if timestamps is not None:
    request.inputs[features.TIMESTAMP].CopyFrom(
        tf.make_tensor_proto(list(timestamps), dtype=tf.int64))
  return request


def append_events_method(channel: grpc.Channel):
  """The event RPC of a server with a history store, as a callable."""
  return channel.unary_unary(
      f"/{serving_names.USER_EVENTS_SERVICE}/{serving_names.APPEND_EVENTS}",
      request_serializer=predict_pb2.PredictRequest.SerializeToString,
      response_deserializer=predict_pb2.PredictResponse.FromString)


def append_event(address: str, user_id: str, item_id: str,
                 timestamp: Optional[int] = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
  """Tells a server with a history store that `user_id` just interacted
  with `item_id`; its next recommendation for the user sees it.

  Raises:
    grpc.RpcError: UNIMPLEMENTED from a server without a store, UNAVAILABLE
      when its store is down (the event was not recorded).
  """
  with _channel(address) as channel:
    append_events_method(channel)(
        events_request([user_id], [item_id],
                       None if timestamp is None else [timestamp]),
        timeout=timeout_s)


def _available_versions(status: get_model_status_pb2.GetModelStatusResponse,
                        ) -> list[int]:
  return [version_status.version
          for version_status in status.model_version_status
          if version_status.state == _AVAILABLE]


def wait_until_available(address: str, model_name: str,
                         timeout_s: float = 30.0,
                         poll_interval_s: float = 0.2) -> int:
  """Polls GetModelStatus until some version of the model is AVAILABLE.

  Returns:
    The highest available version.

  Raises:
    TimeoutError: if none is available within `timeout_s`.
    grpc.RpcError: for answers other than "not there yet".
  """
  deadline = time.monotonic() + timeout_s
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = model_name
  last_problem = "no answer yet"
  with _channel(address) as channel:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    while (remaining := deadline - time.monotonic()) > 0:
      try:
        versions = _available_versions(
            stub.GetModelStatus(request, timeout=min(remaining, 1.0)))
        if versions:
          return max(versions)
        last_problem = "no version is AVAILABLE"
      except grpc.RpcError as error:
        if error.code() not in _RETRIABLE_CODES:
          raise
        last_problem = f"{error.code().name}: {error.details()}"
      time.sleep(min(poll_interval_s, max(deadline - time.monotonic(), 0)))
  raise TimeoutError(f"model {model_name} not available at {address} after "
                     f"{timeout_s}s ({last_problem})")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m serving.client",
      description="Prints a served retrieval model's top items for a user, "
      "or, with --rank_items, a served ranker's click probabilities for "
      "given candidates.")
  parser.add_argument("--address", default="127.0.0.1:8500",
                      help="host:port of the gRPC server "
                           "(default: %(default)s)")
  parser.add_argument("--model_name", required=True)
  parser.add_argument("--user_id", required=True)
  parser.add_argument("--history", default=None,
                      help="comma-separated item ids, oldest first; left out, "
                           "a server with a history store reads the user's")
  parser.add_argument("--timestamp", type=int, default=None,
                      help="request time in seconds (default: now)")
  parser.add_argument("--k", type=int, default=10,
                      help="items to retrieve (not with --rank_items)")
  retrieval_signatures = [serving_names.DEFAULT] + [
      serving_names.retrieve_top(k) for k in serving_names.RETRIEVE_TOP_KS]
  parser.add_argument(
      "--signature", default=None,
      help=f"retrieval: {', '.join(retrieval_signatures)} or "
           f"{serving_names.RETRIEVE_SCANN}; ranking: {serving_names.DEFAULT}, "
           f"or {serving_names.RANKER_HISTORY_QUERIES} with --history_queries "
           f"(default: {serving_names.DEFAULT}, or the latter)")
  parser.add_argument("--exclude", default="",
                      help="comma-separated ids never to return "
                           f"({serving_names.RETRIEVE_SCANN} only)")
  parser.add_argument("--no_filter_seen", action="store_true",
                      help="let the answer hold items the user has seen "
                           f"({serving_names.RETRIEVE_SCANN} only)")
  parser.add_argument("--append_event", default="",
                      help="an item id: record that the user just interacted "
                           "with it (a server with a history store), instead "
                           "of recommending")
  parser.add_argument("--rank_items", default="",
                      help="comma-separated candidate ids: score them with a "
                           "ranker instead of retrieving")
  parser.add_argument(
      "--history_queries", default=None,
      help=f"the search query of each --history item, separated by "
           f"'{QUERY_SEPARATOR}', empty where there was none "
           "(with --rank_items)")
  parser.add_argument("--wait_s", type=float, default=0.0,
                      help="first wait this long for the model to be available")
  parser.add_argument("--timeout_s", type=float, default=DEFAULT_TIMEOUT_S)
  return parser


def _split(ids: str) -> list[str]:
  return [item_id for item_id in ids.split(",") if item_id]


def _signature(flags: argparse.Namespace) -> str:
  if flags.signature:
    return flags.signature
  if flags.rank_items:
    return ranking_signature(flags.history_queries)
  return serving_names.DEFAULT


def _call(flags: argparse.Namespace,
          ) -> tuple[int, list[tuple[str, float]], Optional[str]]:
  """Sends the request the flags describe: `(model version, [(id, score)],
  where the server found the history)`."""
  history = None if flags.history is None else _split(flags.history)
  if flags.rank_items:
    result = rank(flags.address, flags.model_name, flags.user_id,
                  _split(flags.rank_items), history or (),
                  flags.history_queries, flags.timestamp, _signature(flags),
                  flags.timeout_s)
    return result.model_version, list(zip(result.item_ids,
                                          result.probabilities)), None
  result = recommend(flags.address, flags.model_name, flags.user_id, history,
                     flags.timestamp, flags.k, _signature(flags),
                     _split(flags.exclude), not flags.no_filter_seen,
                     flags.timeout_s)
  return (result.model_version, list(zip(result.item_ids, result.scores)),
          result.history_source)


def main(argv: Optional[list[str]] = None) -> int:
  parser = _parser()
  flags = parser.parse_args(argv)
  if flags.history_queries is not None:
    if not flags.rank_items:
      parser.error("--history_queries needs --rank_items (a ranker reads them)")
    flags.history_queries = flags.history_queries.split(QUERY_SEPARATOR)
  if flags.exclude and flags.rank_items:
    parser.error("--exclude is for retrieval, not with --rank_items")
  if flags.append_event and (flags.rank_items or flags.history is not None):
    parser.error("--append_event records an event; it takes no --history "
                 "or --rank_items")
  try:
    if flags.append_event:
      append_event(flags.address, flags.user_id, flags.append_event,
                   flags.timestamp, flags.timeout_s)
      print(f"recorded: user {flags.user_id} item {flags.append_event}")
      return 0
    if flags.wait_s > 0:
      wait_until_available(flags.address, flags.model_name, flags.wait_s)
    version, scored, source = _call(flags)
  except grpc.RpcError as error:
    print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
    return 1
  except (TimeoutError, ValueError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  print(f"model {flags.model_name} version {version} "
        f"signature {_signature(flags)}"
        + ("" if source is None else f"; history: {source}"))
  for position, (item_id, score) in enumerate(scored, start=1):
    print(f"{position:4d}  {item_id}  {score:.6f}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
