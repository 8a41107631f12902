"""Requests answered from the online history store, and the event RPC.

With a store (`serving.server --history_store`), a Predict request to a
signature that takes the raw query features may send only the user id: the
server reads each user's history from the store, gives the query tower its
newest `history_length` items, and (for `retrieve_scann`, unless the
request's `filter_seen` is False) leaves every stored item of the user out of
the answer. A user the store does not know gets the cold-start path, the
query tower on an empty history. The response's `history_source` output
says which, per row. A request that carries its own history never touches
the store, so it is served while the store is down; one that needs the store
then gets UNAVAILABLE.

The event RPC (`AppendEvents`, service `vrec.serving.UserEvents`) appends
users' new events to the store, then to the event log beside the push's
snapshot (`serving.history_journal`), so that the next request sees them and
a rebuilt store keeps them.
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from data import features
from models import serving_names
from serving import errors
from serving import history_journal
from serving import history_store
from serving import rpc_handlers
from serving import servables


class _EventSignature:
  """What `AppendEvents` accepts: one event per row."""
  inputs = {
      features.USER_ID: servables.InputSpec((tf.string,),
                                            tf.TensorShape([None])),
      features.ITEM_ID: servables.InputSpec((tf.string,),
                                            tf.TensorShape([None])),
      # Absent: the server's clock.
      features.TIMESTAMP: servables.InputSpec((tf.int64,),
                                              tf.TensorShape([None]),
                                              required=False),
  }
  outputs = ()


def _padded(rows: Sequence[Sequence[str]]) -> np.ndarray:
  """`[len(rows), longest]` bytes, "" padding, at least one column."""
  width = max([len(row) for row in rows] + [1])
  padded = np.full((len(rows), width), b"", dtype=object)
  for position, row in enumerate(rows):
    padded[position, :len(row)] = [item_id.encode() for item_id in row]
  return padded


def _decoded(values: np.ndarray) -> list[str]:
  return [value.decode("utf-8", "replace") for value in values]


class StoredHistories:
  """Fills requests' histories from a store and appends events to it.

  Args:
    store: where the histories live.
    history_length: newest items the query tower is given, as the pushed
      model was trained (`ExamplesConfig.history_length`).
    event_log: where accepted events are logged for a rebuild; None logs
      nothing (a rebuilt store then lacks them).
    clock: seconds since the epoch, for requests and events without a
      timestamp.
  """

  def __init__(self, store: history_store.HistoryStore, history_length: int,
               event_log: Optional[history_journal.EventLog] = None,
               clock: Callable[[], float] = time.time):
    self.store = store
    self._history_length = history_length
    self._event_log = event_log
    self._clock = clock

  def fillable(self, signature: servables.Signature) -> frozenset[str]:
    """The inputs of `signature` a request may leave to the store."""
    if not {features.USER_ID, features.HISTORY_ITEM_IDS} <= signature.inputs.keys():
      return frozenset()
    return frozenset({features.HISTORY_ITEM_IDS, features.TIMESTAMP}
                     & signature.inputs.keys())

  def _read(self, user_ids: list[str],
            ) -> list[Optional[history_store.UserHistory]]:
    try:
      return self.store.read(user_ids)
    except history_store.StoreUnavailableError as error:
      raise errors.ServingError(
          grpc.StatusCode.UNAVAILABLE,
          f"{error}; a request that sends {features.HISTORY_ITEM_IDS} is "
          "served without the store") from error

  def complete(self, signature: servables.Signature,
               arrays: Mapping[str, np.ndarray],
               ) -> tuple[Mapping[str, np.ndarray], Optional[np.ndarray]]:
    """Fills in what a request left to the store.

    Args:
      signature: the signature the request runs.
      arrays: the request's decoded inputs.

    Returns:
      `(inputs, history_source)`: the request's inputs unchanged and None
      when it carries its own history (or the signature takes none); else
      the inputs with the stored histories (and the timestamp, if it was
      left out) and each row's `HISTORY_SOURCE`.

    Raises:
      ServingError: UNAVAILABLE when the store cannot be read.
    """
    if (features.HISTORY_ITEM_IDS in arrays
        or features.HISTORY_ITEM_IDS not in self.fillable(signature)):
      return arrays, None
    user_ids = _decoded(arrays[features.USER_ID])
    histories = self._read(user_ids)
    seen = [history.item_ids if history else () for history in histories]
    completed = dict(arrays)
    completed[features.HISTORY_ITEM_IDS] = _padded(
        [items[-self._history_length:] for items in seen])
    if (features.TIMESTAMP in signature.inputs
        and features.TIMESTAMP not in arrays):
      completed[features.TIMESTAMP] = np.full(len(user_ids), int(self._clock()),
                                              dtype=np.int64)
    if (serving_names.SCANN_EXCLUDE_ITEM_IDS in signature.inputs
        and servables.filter_seen(
            arrays.get(serving_names.FILTER_SEEN))):
      # The query tower reads the newest items; the filter covers them all.
      requested = arrays.get(serving_names.SCANN_EXCLUDE_ITEM_IDS)
      if requested is None:
        requested = np.full((len(seen), 1), b"", dtype=object)
      # Rows that do not match the batch are left for the signature to
      # refuse, as it refuses them without a store.
      if len(requested) == len(seen):
        completed[serving_names.SCANN_EXCLUDE_ITEM_IDS] = _padded(
            [[*_decoded(row), *items] for row, items in zip(requested, seen)])
    sources = np.array([serving_names.HISTORY_FROM_STORE if history
                        else serving_names.HISTORY_COLD_START
                        for history in histories], dtype=object)
    return completed, sources

  def append_events(self, request: predict_pb2.PredictRequest,
                    limits: rpc_handlers.RequestLimits,
                    ) -> predict_pb2.PredictResponse:
    """Answers `AppendEvents`: the store first, then the event log, so an
    event is logged only once the store has it, and an acknowledged event
    is in both.

    Raises:
      ServingError: INVALID_ARGUMENT for a malformed request, UNAVAILABLE
        when the store cannot be written (nothing was appended then).
    """
    arrays = rpc_handlers.decode_inputs(_EventSignature(), request.inputs,
                                        limits)
    user_ids = _decoded(arrays[features.USER_ID])
    item_ids = _decoded(arrays[features.ITEM_ID])
    timestamps = (arrays[features.TIMESTAMP].tolist()
                  if features.TIMESTAMP in arrays
                  else [int(self._clock())] * len(user_ids))
    if not len(user_ids) == len(item_ids) == len(timestamps):
      raise errors.invalid_argument(
          f"{len(user_ids)} user ids, {len(item_ids)} item ids and "
          f"{len(timestamps)} timestamps: give one of each per event")
    if not all(user_ids) or not all(item_ids):
      raise errors.invalid_argument("user and item ids must not be empty")
    events = list(zip(user_ids, item_ids, timestamps))
    try:
      self.store.append(events)
    except history_store.StoreUnavailableError as error:
      raise errors.ServingError(
          grpc.StatusCode.UNAVAILABLE,
          f"{error}; no event was recorded, send them again") from error
    if self._event_log is not None:
      self._event_log.append(events)
    return predict_pb2.PredictResponse()

  def close(self) -> None:
    self.store.close()
    if self._event_log is not None:
      self._event_log.close()
