"""A local model server that speaks TF Serving's gRPC protocol.

It serves every model under a base path laid out as TF Serving expects,
`<base>/<model_name>/<version>/` holding plain-TF SavedModels, and implements
`PredictionService` (Predict, GetModelMetadata) and `ModelService`
(GetModelStatus) with TF Serving's status codes and messages, so clients can
switch between it and `tensorflow_model_server` by changing the address.

A background poller follows the file-system source's version policy: new
version directories are loaded, the chosen versions are served and the others
unloaded. Requests hold the servable they started with, so a swap never drops
an in-flight request.

A version directory that also holds a ScaNN index (`serving/scann_index.py`)
gets one extra signature, `retrieve_scann`: raw query features -> the query
tower (`query_embedding`) -> approximate top-k, history items excluded. A
multi-vector query tower (`[batch, K, dim]` embeddings) has each of a user's
K vectors search the index and the K lists merged (`serving/multi_vector.py`).

Run `python -m serving.server --help` for the flags.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import os
import re
import signal
import threading
import time
import types
from typing import Callable, Iterable, Mapping, Optional, Protocol

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# pylint: disable=g-import-not-at-top,wrong-import-position
import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import scann_index

try:
  import prometheus_client
except ImportError:  # Metrics are optional; --metrics_port then fails clearly.
  prometheus_client = None
# pylint: enable=g-import-not-at-top,wrong-import-position

_LOG = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
QUERY_SIGNATURE = "query_embedding"
SCANN_SIGNATURE = "retrieve_scann"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
SIGNATURE_DEF_FIELD = "signature_def"
HISTORY_INPUT = "history_item_ids"
K_INPUT = "k"
EXCLUDE_INPUT = "exclude_item_ids"
DEFAULT_K = 10
MAX_K = 1000

_SAVED_MODEL_FILE = "saved_model.pb"
_SERVE_TAG = "serve"
_UNKNOWN_LABEL = "unknown"
_State = get_model_status_pb2.ModelVersionStatus.State
# A plain directory name: a request's model name can never reach another path.
_MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,255}")
# Status messages travel in trailing metadata, which clients cap (8 KiB by
# default); echoing a request's multi-megabyte name must not break the reply.
_MAX_MESSAGE_CHARS = 2000
_GRPC_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
# What one decoded string costs before its content: a numpy object pointer and
# TF's tstring. A request declaring a million empty strings allocates this much.
_DECODED_STRING_BYTES = 32
# TF Serving answers with the typed fields (float_val, ...) rather than
# tensor_content; clients that read e.g. `outputs["scores"].float_val`
# directly rely on it.
_PROTO_FIELD_BY_DTYPE = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
}


class ServingError(Exception):
  """A failed request, with the gRPC status code to answer it with."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


def _invalid(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _grpc_code(error: tf.errors.OpError) -> grpc.StatusCode:
  """TF error codes and gRPC status codes share their numbering."""
  return _GRPC_CODE_BY_VALUE.get(error.error_code, grpc.StatusCode.INTERNAL)


def check_model_name(name: str) -> None:
  """Refuses a model name that is not a plain directory name.

  Raises:
    ServingError: INVALID_ARGUMENT for anything but 1-255 of
      `[A-Za-z0-9_.-]`, and for "." and "..".
  """
  if not _MODEL_NAME_PATTERN.fullmatch(name) or name in (".", ".."):
    raise _invalid(f"invalid model name {name[:100]!r}: expected 1-255 "
                   "letters, digits, '_', '.' or '-', and not '.' or '..'")


def _bounded(message: str) -> str:
  if len(message) <= _MAX_MESSAGE_CHARS:
    return message
  return message[:_MAX_MESSAGE_CHARS] + f"... ({len(message)} characters)"


@dataclasses.dataclass(frozen=True)
class Deadline:
  """When a request must be answered by, on the monotonic clock.

  Attributes:
    expires_at: `time.monotonic()` value after which the answer is too late.
    source: what set it, for the error message.
  """
  expires_at: float
  source: str

  @classmethod
  def of(cls, context: grpc.ServicerContext,
         max_request_seconds: float) -> "Deadline":
    """The client's deadline or the server's cap, whichever comes first."""
    remaining = context.time_remaining()
    if remaining is not None and remaining < max_request_seconds:
      return cls(time.monotonic() + remaining, "the client's deadline")
    return cls(time.monotonic() + max_request_seconds,
               f"--max_request_seconds={max_request_seconds:g}")

  def check(self, stage: str) -> None:
    """Stops a request whose answer could no longer arrive in time.

    Raises:
      ServingError: DEADLINE_EXCEEDED.
    """
    if time.monotonic() >= self.expires_at:
      raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"{self.source} passed {stage}")


# ---------------------------------------------------------------- policy ---


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
  """Which versions to serve, like TF Serving's `model_version_policy`.

  Attributes:
    kind: "latest" (the `num_versions` highest), "all", or "specific".
    num_versions: how many versions "latest" serves.
    versions: the versions "specific" serves.
  """
  kind: str = "latest"
  num_versions: int = 1
  versions: frozenset[int] = frozenset()

  @classmethod
  def parse(cls, text: str) -> "VersionPolicy":
    """Parses "latest:N", "all" or "specific:V1,V2,...".

    Raises:
      ValueError: for anything else.
    """
    kind, _, argument = text.strip().partition(":")
    try:
      if kind == "latest" and int(argument or "1") >= 1:
        return cls("latest", num_versions=int(argument or "1"))
      if kind == "all" and not argument:
        return cls("all")
      if kind == "specific" and argument:
        return cls("specific", versions=frozenset(
            int(version) for version in argument.split(",")))
    except ValueError:
      pass
    raise ValueError(f"bad version policy {text!r}: expected 'latest:N' "
                     "(N >= 1), 'all' or 'specific:V1,V2,...'")

  def select(self, versions: Iterable[int]) -> set[int]:
    """The versions to serve among the loadable `versions`."""
    versions = set(versions)
    if self.kind == "latest":
      return set(sorted(versions, reverse=True)[:self.num_versions])
    if self.kind == "specific":
      return versions & self.versions
    return versions


# ------------------------------------------------------------ signatures ---


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """What a signature accepts for one input.

  Attributes:
    dtypes: accepted dtypes; the first is the one advertised in metadata.
    shape: accepted shape; unknown rank when the signature checks it itself.
    required: whether a request must send the input.
  """
  dtypes: tuple[tf.DType, ...]
  shape: tf.TensorShape
  required: bool = True

  @property
  def batched(self) -> bool:
    return self.shape.rank is not None and self.shape.rank >= 1


class Signature(Protocol):
  """Something Predict can run: numpy inputs in, numpy outputs out."""
  inputs: Mapping[str, InputSpec]
  outputs: tuple[str, ...]

  def run(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    ...


class SavedModelSignature:
  """A signature function of a loaded SavedModel."""

  def __init__(self, function):
    self._function = function
    _, specs = function.structured_input_signature
    self.inputs = {name: InputSpec((spec.dtype,), spec.shape)
                   for name, spec in specs.items()}
    self.output_shapes = {name: spec.shape for name, spec
                          in function.structured_outputs.items()}
    self.outputs = tuple(sorted(self.output_shapes))

  def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    feeds = {name: tf.constant(value, dtype=self.inputs[name].dtypes[0])
             for name, value in inputs.items()}
    return {name: tensor.numpy()
            for name, tensor in self._function(**feeds).items()}


class ScannRetrievalSignature:
  """`retrieve_scann`: the query tower, then a ScaNN search.

  Items in the request's history and in `exclude_item_ids` are never
  returned; rows are padded with "" and -inf scores when the exclusions leave
  fewer than k items. When the query tower embeds a user as K vectors, each
  vector searches the index and the lists merge by the index's `merge_rule`
  (`serving.multi_vector`), into k distinct items per user.
  """
  outputs = ("item_ids", "scores")

  def __init__(self, query: SavedModelSignature,
               index: scann_index.ScannIndex):
    self._query = query
    self._index = index
    self.max_k = min(MAX_K, len(index.item_ids))
    self.inputs = {
        **query.inputs,
        # Scalar or [1]: checked in `_k`, a TensorShape cannot say "either".
        K_INPUT: InputSpec((tf.int32, tf.int64), tf.TensorShape(None),
                           required=False),
        EXCLUDE_INPUT: InputSpec((tf.string,), tf.TensorShape([None, None]),
                                 required=False),
    }

  def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    k = self._k(inputs.get(K_INPUT))
    queries = self._query.run(
        {name: inputs[name] for name in self._query.inputs})["embedding"]
    item_ids, scores = self._index.search(
        queries, k, exclude_ids=self._excluded_ids(inputs, len(queries)))
    return {"item_ids": item_ids, "scores": scores}

  def signature_def(self) -> meta_graph_pb2.SignatureDef:
    """The hand-built SignatureDef that GetModelMetadata advertises."""
    signature_def = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD_NAME)
    for name, spec in self.inputs.items():
      signature_def.inputs[name].CopyFrom(
          _tensor_info(spec.dtypes[0], spec.shape))
    signature_def.outputs["item_ids"].CopyFrom(
        _tensor_info(tf.string, tf.TensorShape([None, None])))
    signature_def.outputs["scores"].CopyFrom(
        _tensor_info(tf.float32, tf.TensorShape([None, None])))
    return signature_def

  def _k(self, value: Optional[np.ndarray]) -> int:
    if value is None:
      return min(DEFAULT_K, self.max_k)
    if value.ndim > 1 or value.size != 1:
      raise _invalid(f'input "{K_INPUT}" must be a scalar or have shape [1], '
                     f"got shape {list(value.shape)}")
    k = int(value.reshape(-1)[0])
    if not 1 <= k <= self.max_k:
      raise _invalid(f'input "{K_INPUT}" must be in [1, {self.max_k}] '
                     f"(at most {MAX_K} and the number of indexed items), "
                     f"got {k}")
    return k

  def _excluded_ids(self, inputs: Mapping[str, np.ndarray],
                    batch_size: int) -> list[set[str]]:
    excluded = [set() for _ in range(batch_size)]
    for name in (HISTORY_INPUT, EXCLUDE_INPUT):
      if name not in inputs:
        continue
      if inputs[name].shape[0] != batch_size:
        raise _invalid(f'input "{name}" has {inputs[name].shape[0]} rows but '
                       f"the batch has {batch_size}")
      for row_ids, row in zip(excluded, inputs[name]):
        row_ids.update(_decode_ids(row))
    return excluded


def _decode_ids(row: np.ndarray) -> set[str]:
  """Non-padding ids of one row, as the index's str ids."""
  return {item_id.decode("utf-8", "replace") for item_id in row if item_id}


def _tensor_info(dtype: tf.DType,
                 shape: tf.TensorShape) -> meta_graph_pb2.TensorInfo:
  return meta_graph_pb2.TensorInfo(dtype=dtype.as_datatype_enum,
                                   tensor_shape=shape.as_proto())


# ------------------------------------------------------------- servables ---


@dataclasses.dataclass(frozen=True)
class Servable:
  """One loaded model version; never changes once loaded.

  Attributes:
    name: model name.
    version: model version.
    signatures: what Predict can run, by signature name.
    signature_defs: what GetModelMetadata advertises, by signature name.
    saved_model: the loaded object; holding it keeps its variables alive.
  """
  name: str
  version: int
  signatures: Mapping[str, Signature]
  signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
  saved_model: object


def _serving_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
  """The "serve" MetaGraphDef of a SavedModel, which holds its SignatureDefs."""
  with open(os.path.join(path, _SAVED_MODEL_FILE), "rb") as f:
    saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    if set(meta_graph.meta_info_def.tags) == {_SERVE_TAG}:
      return meta_graph
  raise ValueError(f'{path} has no MetaGraph tagged "{_SERVE_TAG}"')


def _scann_signature(signatures: Mapping[str, SavedModelSignature],
                     path: str) -> ScannRetrievalSignature:
  """Pairs the version's query tower with its ScaNN index.

  Raises:
    ValueError: if the two cannot work together.
  """
  query = signatures.get(QUERY_SIGNATURE)
  if query is None or "embedding" not in query.outputs:
    raise ValueError(f'{path} has a ScaNN index but no "{QUERY_SIGNATURE}" '
                     'signature with an "embedding" output')
  embedding_shape = query.output_shapes["embedding"]
  if embedding_shape.rank not in (2, 3):
    raise ValueError(f'{path}: "{QUERY_SIGNATURE}" must return [batch, dim] '
                     "or [batch, vectors, dim] embeddings, got "
                     f"{embedding_shape}")
  index = scann_index.ScannIndex.load(path)
  dimension = embedding_shape[-1]
  if dimension is not None and dimension != index.dimension:
    raise ValueError(f"{path}: query embeddings have dimension {dimension} "
                     f"but the ScaNN index has {index.dimension}")
  return ScannRetrievalSignature(query, index)


def load_servable(name: str, version: int, path: str) -> Servable:
  """Loads one version directory.

  Raises:
    Exception: whatever loading a broken SavedModel or index raises.
  """
  signature_defs = dict(_serving_meta_graph(path).signature_def)
  saved_model = tf.saved_model.load(path, tags=[_SERVE_TAG])
  signatures = {key: SavedModelSignature(function)
                for key, function in saved_model.signatures.items()}
  if scann_index.has_index(path):
    if SCANN_SIGNATURE in signatures:
      _LOG.warning("%s defines %s itself; its ScaNN index is not served",
                   path, SCANN_SIGNATURE)
    else:
      scann_signature = _scann_signature(signatures, path)
      signatures[SCANN_SIGNATURE] = scann_signature
      signature_defs[SCANN_SIGNATURE] = scann_signature.signature_def()
  return Servable(name, version, types.MappingProxyType(signatures),
                  types.MappingProxyType(signature_defs), saved_model)


def _parse_version(directory_name: str) -> Optional[int]:
  if directory_name.isascii() and directory_name.isdigit():
    version = int(directory_name)
    return version if version < 2**63 else None
  return None


def ready_versions(model_dir: str) -> dict[int, str]:
  """Version directories that hold a `saved_model.pb`, by version."""
  versions = {}
  with os.scandir(model_dir) as entries:
    for entry in entries:
      version = _parse_version(entry.name)
      if (version is not None and entry.is_dir() and
          os.path.isfile(os.path.join(entry.path, _SAVED_MODEL_FILE))):
        versions[version] = entry.path
  return versions


def _fingerprint(path: str) -> tuple:
  """Changes whenever a file under `path` is added, removed or rewritten."""
  files = []
  for root, _, names in os.walk(path):
    for file_name in names:
      stat = os.stat(os.path.join(root, file_name))
      files.append((os.path.relpath(os.path.join(root, file_name), path),
                    stat.st_size, stat.st_mtime_ns))
  return tuple(sorted(files))


def _version_status(state: int, error: Optional[BaseException] = None,
                    ) -> get_model_status_pb2.ModelVersionStatus:
  status = get_model_status_pb2.ModelVersionStatus(state=state)
  if error is not None:
    status.status.error_code = (
        error.error_code if isinstance(error, tf.errors.OpError)
        else grpc.StatusCode.UNKNOWN.value[0])
    status.status.error_message = f"{type(error).__name__}: {error}"
  return status


class ModelRegistry:
  """The servables being served, refreshed from the model base path.

  Request threads read `_servables`, an immutable snapshot that `refresh`
  replaces whole; a request keeps the servable it resolved, so unloading a
  version only drops the registry's reference and the memory goes once the
  last in-flight request using it finishes.

  Args:
    model_base_path: `<base>` holding `<name>/<version>/`, or, with
      `model_name`, the directory of that one model.
    model_name: serve only this model, from `model_base_path` itself.
    version_policy: which versions to serve.
  """

  def __init__(self, model_base_path: str, model_name: Optional[str] = None,
               version_policy: VersionPolicy = VersionPolicy()):
    self._model_base_path = model_base_path
    self._model_name = model_name
    self._version_policy = version_policy
    self._servables: Mapping[str, Mapping[int, Servable]] = (
        types.MappingProxyType({}))
    self._statuses: dict[
        str, dict[int, get_model_status_pb2.ModelVersionStatus]] = {}
    self._failed_fingerprints: dict[tuple[str, int], tuple] = {}
    self._status_lock = threading.Lock()
    self._refresh_lock = threading.Lock()

  def loaded_versions(self) -> dict[str, list[int]]:
    return {name: sorted(versions)
            for name, versions in self._servables.items() if versions}

  def resolve(self, model_spec: model_pb2.ModelSpec) -> Servable:
    """The servable a request's ModelSpec asks for.

    Raises:
      ServingError: NOT_FOUND for an unknown model or version,
        INVALID_ARGUMENT for an invalid model name or a version label (labels
        are not supported).
    """
    name = model_spec.name
    # Names only key the loaded snapshot and are never joined to a path; the
    # check keeps a name from ever escaping the base path all the same.
    check_model_name(name)
    versions = self._servables.get(name, {})
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version_label":
      raise _invalid(
          f"Unrecognized servable version label: {model_spec.version_label}")
    if choice == "version":
      servable = versions.get(model_spec.version.value)
      if servable is None:
        raise ServingError(grpc.StatusCode.NOT_FOUND,
                           "Servable not found for request: "
                           f"Specific({name}, {model_spec.version.value})")
      return servable
    if not versions:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f"Servable not found for request: Latest({name})")
    return versions[max(versions)]

  def version_statuses(self, name: str,
                       ) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
    with self._status_lock:
      return dict(self._statuses.get(name, {}))

  def has_model(self, name: str) -> bool:
    return name in self._servables

  def refresh(self) -> None:
    """Loads and unloads versions to match the disk and the version policy."""
    with self._refresh_lock:
      try:
        model_dirs = self._model_dirs()
      except OSError as error:
        # TF Serving keeps waiting for the base path to appear; so do we.
        _LOG.warning("Cannot scan %s: %s", self._model_base_path, error)
        return
      for name in sorted(set(model_dirs) | set(self._servables)):
        try:
          self._refresh_model(name, ready_versions(model_dirs[name])
                              if name in model_dirs else {})
        except OSError as error:
          # Files vanishing mid-scan must not stop the other models' refresh;
          # what is loaded keeps serving.
          _LOG.warning("Cannot refresh model %s: %s", name, error)

  def _model_dirs(self) -> dict[str, str]:
    if self._model_name is not None:
      return {self._model_name: self._model_base_path}
    # Hidden directories are staging areas; names that no request may use
    # are not worth loading.
    with os.scandir(self._model_base_path) as entries:
      return {entry.name: entry.path for entry in entries
              if entry.is_dir() and not entry.name.startswith(".") and
              _MODEL_NAME_PATTERN.fullmatch(entry.name)}

  def _refresh_model(self, name: str, available: Mapping[int, str]) -> None:
    """Loads the versions the policy wants, newest first, then unloads.

    Loading before unloading keeps the model available throughout, and a
    version that fails to load drops out of the candidates, so "latest"
    falls back to the newest version that loads.
    """
    loaded = dict(self._servables.get(name, {}))
    candidates = {version for version, path in available.items()
                  if not self._still_failed(name, version, path)}
    wanted = self._version_policy.select(candidates)
    while missing := sorted(wanted - loaded.keys(), reverse=True):
      servable = self._load(name, missing[0], available[missing[0]])
      if servable is None:
        candidates.discard(missing[0])
        wanted = self._version_policy.select(candidates)
      else:
        loaded[servable.version] = servable
        self._publish(name, loaded)
    for version in sorted(loaded.keys() - wanted):
      del loaded[version]
      self._publish(name, loaded)
      self._set_status(name, version, _version_status(_State.END))
      _LOG.info("Unloaded model %s version %d", name, version)

  def _still_failed(self, name: str, version: int, path: str) -> bool:
    """Whether the version failed to load and has not changed on disk since."""
    failed = self._failed_fingerprints.get((name, version))
    return failed is not None and failed == _fingerprint(path)

  def _load(self, name: str, version: int, path: str) -> Optional[Servable]:
    self._set_status(name, version, _version_status(_State.LOADING))
    try:
      servable = load_servable(name, version, path)
    except Exception as error:  # pylint: disable=broad-except
      # Any broken artifact must leave the versions already served alone.
      _LOG.error("Failed to load model %s version %d from %s: %s", name,
                 version, path, error)
      self._failed_fingerprints[(name, version)] = _fingerprint(path)
      self._set_status(name, version, _version_status(_State.END, error))
      return None
    self._failed_fingerprints.pop((name, version), None)
    self._set_status(name, version, _version_status(_State.AVAILABLE))
    _LOG.info("Loaded model %s version %d from %s", name, version, path)
    return servable

  def _publish(self, name: str, versions: Mapping[int, Servable]) -> None:
    self._servables = types.MappingProxyType(
        {**self._servables, name: types.MappingProxyType(dict(versions))})

  def _set_status(self, name: str, version: int,
                  status: get_model_status_pb2.ModelVersionStatus) -> None:
    status.version = version
    with self._status_lock:
      self._statuses.setdefault(name, {})[version] = status


# -------------------------------------------------------------- requests ---


@dataclasses.dataclass(frozen=True)
class RequestLimits:
  """Bounds on what one request may ask for.

  Attributes:
    max_batch_size: largest first dimension of a batched input.
    max_decoded_bytes: largest decoded size of one input tensor; keeps a
      tiny TensorProto that declares a huge shape from allocating it.
  """
  max_batch_size: int
  max_decoded_bytes: int


def _dtype_name(dtype: int) -> str:
  try:
    return types_pb2.DataType.Name(dtype)
  except ValueError:
    return f"unknown dtype {dtype}"


def _check_input_names(specs: Mapping[str, InputSpec],
                       names: Iterable[str]) -> None:
  names = set(names)
  required = {name for name, spec in specs.items() if spec.required}
  unexpected = sorted(names - specs.keys())
  missing = sorted(required - names)
  if unexpected or missing:
    raise _invalid(
        f"inputs do not match the signature: unexpected {unexpected}, "
        f"missing {missing}; required {sorted(required)}, optional "
        f"{sorted(specs.keys() - required)}")


def _decoded_bytes_per_element(dtype: int) -> int:
  if dtype == types_pb2.DT_STRING:
    return _DECODED_STRING_BYTES
  return tf.as_dtype(dtype).size


def _request_shape(name: str, proto: tensor_pb2.TensorProto,
                   max_decoded_bytes: int) -> tf.TensorShape:
  dims = [dim.size for dim in proto.tensor_shape.dim]
  if proto.tensor_shape.unknown_rank or any(size < 0 for size in dims):
    raise _invalid(f'input "{name}" must have a known rank and no negative '
                   "dimensions")
  elements = np.prod(dims, dtype=np.float64)
  if elements * _decoded_bytes_per_element(proto.dtype) > max_decoded_bytes:
    raise _invalid(f'input "{name}" has shape {dims}: {elements:.0f} elements '
                   f"would decode to more than {max_decoded_bytes} bytes")
  return tf.TensorShape(dims)


def _decode_input(name: str, spec: InputSpec, proto: tensor_pb2.TensorProto,
                  max_decoded_bytes: int) -> np.ndarray:
  """Checks dtype and shape on the proto's header, then decodes it."""
  if proto.dtype not in {dtype.as_datatype_enum for dtype in spec.dtypes}:
    expected = " or ".join(_dtype_name(d.as_datatype_enum) for d in spec.dtypes)
    raise _invalid(f'input "{name}" has dtype {_dtype_name(proto.dtype)}, '
                   f"expected {expected}")
  shape = _request_shape(name, proto, max_decoded_bytes)
  if not spec.shape.is_compatible_with(shape):
    raise _invalid(f'input "{name}" has shape {shape}, expected {spec.shape}')
  try:
    return tf.make_ndarray(proto)
  except Exception as error:  # pylint: disable=broad-except
    # Malformed protos fail in numpy with many exception types.
    raise _invalid(
        f'input "{name}" is not a valid TensorProto: {error}') from error


def _check_batch_size(specs: Mapping[str, InputSpec],
                      arrays: Mapping[str, np.ndarray],
                      max_batch_size: int) -> None:
  for name, array in arrays.items():
    if specs[name].batched and array.shape[0] > max_batch_size:
      raise _invalid(f'input "{name}" has batch size {array.shape[0]}, more '
                     f"than the server's --max_batch_size={max_batch_size}")


def decode_inputs(signature: Signature,
                  protos: Mapping[str, tensor_pb2.TensorProto],
                  limits: RequestLimits) -> dict[str, np.ndarray]:
  """Validates a request's inputs against a signature and decodes them.

  Raises:
    ServingError: INVALID_ARGUMENT naming the offending input.
  """
  _check_input_names(signature.inputs, protos.keys())
  arrays = {name: _decode_input(name, signature.inputs[name], proto,
                                limits.max_decoded_bytes)
            for name, proto in protos.items()}
  _check_batch_size(signature.inputs, arrays, limits.max_batch_size)
  return arrays


def _output_names(signature: Signature,
                  output_filter: Iterable[str]) -> tuple[str, ...]:
  output_filter = tuple(output_filter)
  for alias in output_filter:
    if alias not in signature.outputs:
      raise _invalid(f"output tensor alias not found in signature: {alias} "
                     f"Outputs expected to be in the set "
                     f"{{{','.join(signature.outputs)}}}.")
  if len(set(output_filter)) != len(output_filter):
    raise _invalid(f"duplicate output tensor alias in {list(output_filter)}")
  return output_filter or signature.outputs


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
  """Encodes an output as TF Serving does, in the dtype's typed field."""
  proto = tf.make_tensor_proto(array)
  field = _PROTO_FIELD_BY_DTYPE.get(proto.dtype)
  if field is not None and proto.tensor_content:
    proto.tensor_content = b""
    getattr(proto, field).extend(np.asarray(array).ravel().tolist())
  return proto


def _signature_of(servable: Servable, signature_name: str) -> Signature:
  signature = servable.signatures.get(signature_name)
  if signature is None:
    # TF Serving answers FAILED_PRECONDITION here, not INVALID_ARGUMENT.
    raise ServingError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f'Serving signature key "{signature_name}" not found. Model '
        f'"{servable.name}" version {servable.version} has '
        f"{sorted(servable.signatures)}.")
  return signature


def predict(registry: ModelRegistry, limits: RequestLimits,
            request: predict_pb2.PredictRequest,
            deadline: Deadline) -> predict_pb2.PredictResponse:
  """Runs one Predict request.

  The model's graph cannot be interrupted once it runs, so the deadline is
  checked before it starts and again once it is done.

  Raises:
    ServingError: with the status code TF Serving would answer with, or
      DEADLINE_EXCEEDED.
  """
  if not request.HasField("model_spec"):
    raise _invalid("Missing ModelSpec")
  servable = registry.resolve(request.model_spec)
  signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
  signature = _signature_of(servable, signature_name)
  where = (f'model "{servable.name}" version {servable.version} signature '
           f'"{signature_name}"')
  try:
    inputs = decode_inputs(signature, request.inputs, limits)
    output_names = _output_names(signature, request.output_filter)
    deadline.check("before the model ran")
    outputs = signature.run(inputs)
    deadline.check("while the model ran")
  except ServingError as error:
    raise ServingError(error.code, f"{where}: {error.message}") from error
  except tf.errors.OpError as error:
    raise ServingError(_grpc_code(error),
                       f"{where}: {error.message}") from error
  response = predict_pb2.PredictResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.model_spec.signature_name = signature_name
  for name in output_names:
    response.outputs[name].CopyFrom(to_tensor_proto(outputs[name]))
  return response


def model_metadata(registry: ModelRegistry,
                   request: get_model_metadata_pb2.GetModelMetadataRequest,
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  """Answers GetModelMetadata: the servable's SignatureDefMap.

  Raises:
    ServingError: as TF Serving would.
  """
  if not request.HasField("model_spec"):
    raise _invalid("Missing ModelSpec")
  if not request.metadata_field:
    raise _invalid(
        "GetModelMetadataRequest must specify at least one metadata_field")
  for field in request.metadata_field:
    if field != SIGNATURE_DEF_FIELD:
      raise _invalid(f"Metadata field {field} is not supported")
  servable = registry.resolve(request.model_spec)
  signature_def_map = get_model_metadata_pb2.SignatureDefMap()
  for name, signature_def in servable.signature_defs.items():
    signature_def_map.signature_def[name].CopyFrom(signature_def)
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map)
  return response


def model_status(registry: ModelRegistry,
                 request: get_model_status_pb2.GetModelStatusRequest,
                 ) -> get_model_status_pb2.GetModelStatusResponse:
  """Answers GetModelStatus for one version or all tracked versions.

  Raises:
    ServingError: NOT_FOUND as TF Serving would.
  """
  if not request.HasField("model_spec"):
    raise _invalid("Missing ModelSpec")
  name = request.model_spec.name
  check_model_name(name)
  statuses = registry.version_statuses(name)
  if request.model_spec.HasField("version"):
    version = request.model_spec.version.value
    if version not in statuses:
      raise ServingError(grpc.StatusCode.NOT_FOUND,
                         f"Could not find version {version} of model {name}")
    statuses = {version: statuses[version]}
  if not statuses:
    raise ServingError(grpc.StatusCode.NOT_FOUND,
                       f"Could not find any versions of model {name}")
  response = get_model_status_pb2.GetModelStatusResponse()
  for version in sorted(statuses, reverse=True):
    response.model_version_status.add().CopyFrom(statuses[version])
  return response


# --------------------------------------------------------------- metrics ---


class RequestMetrics:
  """Prometheus request counts and latencies, on their own HTTP port.

  Labels only take names of models the registry serves, so clients cannot
  grow the label sets without bound by sending made-up names.
  """

  def __init__(self):
    if prometheus_client is None:
      raise RuntimeError("--metrics_port needs the prometheus_client package")
    self._registry = prometheus_client.CollectorRegistry()
    self._requests = prometheus_client.Counter(
        "vrec_serving_requests", "gRPC requests by outcome.",
        ["model", "signature", "method", "code"], registry=self._registry)
    self._latency = prometheus_client.Histogram(
        "vrec_serving_request_latency_seconds", "gRPC request latency.",
        ["model", "signature", "method"], registry=self._registry)
    self._http_server = None

  def start(self, host: str, port: int) -> int:
    """Serves /metrics; returns the bound port."""
    self._http_server, _ = prometheus_client.start_http_server(
        port, addr=host, registry=self._registry)
    return self._http_server.server_port

  def stop(self) -> None:
    if self._http_server is not None:
      self._http_server.shutdown()
      self._http_server.server_close()

  def observe(self, labels: tuple[str, str, str], code: grpc.StatusCode,
              seconds: float) -> None:
    self._requests.labels(*labels, code.name).inc()
    self._latency.labels(*labels).observe(seconds)


def _metric_labels(registry: ModelRegistry, method: str,
                   model_spec: model_pb2.ModelSpec) -> tuple[str, str, str]:
  """(model, signature, method); names the server does not know are bucketed."""
  if not registry.has_model(model_spec.name):
    return _UNKNOWN_LABEL, _UNKNOWN_LABEL, method
  if method != "Predict":
    return model_spec.name, "", method
  signature_name = model_spec.signature_name or DEFAULT_SIGNATURE
  try:
    known = signature_name in registry.resolve(model_spec).signatures
  except ServingError:
    known = False
  return model_spec.name, signature_name if known else _UNKNOWN_LABEL, method


# -------------------------------------------------------------- services ---


class _Responder:
  """Turns request handlers into gRPC answers, errors and metrics included."""

  def __init__(self, registry: ModelRegistry,
               metrics: Optional[RequestMetrics], max_request_seconds: float):
    self._registry = registry
    self._metrics = metrics
    self._max_request_seconds = max_request_seconds

  def answer(self, context: grpc.ServicerContext, method: str,
             model_spec: model_pb2.ModelSpec,
             handler: Callable[[Deadline], object]):
    started = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
      deadline = Deadline.of(context, self._max_request_seconds)
      # A request that waited in the queue past its deadline is skipped.
      deadline.check("before the request started")
      return handler(deadline)
    except ServingError as error:
      code, message = error.code, error.message
    except Exception as error:  # pylint: disable=broad-except
      # A bug or an unexpected model failure must fail only this request.
      _LOG.exception("%s failed", method)
      code = grpc.StatusCode.INTERNAL
      message = f"{type(error).__name__}: {error}"
    finally:
      if self._metrics is not None:
        self._metrics.observe(
            _metric_labels(self._registry, method, model_spec), code,
            time.perf_counter() - started)
    context.abort(code, _bounded(message))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """TF Serving's PredictionService: Predict and GetModelMetadata."""

  def __init__(self, registry: ModelRegistry, limits: RequestLimits,
               responder: _Responder):
    self._registry = registry
    self._limits = limits
    self._responder = responder

  def Predict(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "Predict", request.model_spec,
        lambda deadline: predict(self._registry, self._limits, request,
                                 deadline))

  def GetModelMetadata(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "GetModelMetadata", request.model_spec,
        lambda _: model_metadata(self._registry, request))

  def Classify(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "Classify is not implemented by this server; use Predict")

  def Regress(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "Regress is not implemented by this server; use Predict")

  def MultiInference(self, request, context):  # pylint: disable=invalid-name
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "MultiInference is not implemented by this server; use "
                  "Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
  """TF Serving's ModelService: GetModelStatus."""

  def __init__(self, registry: ModelRegistry, responder: _Responder):
    self._registry = registry
    self._responder = responder

  def GetModelStatus(self, request, context):  # pylint: disable=invalid-name
    return self._responder.answer(
        context, "GetModelStatus", request.model_spec,
        lambda _: model_status(self._registry, request))

  # pylint: disable-next=invalid-name
  def HandleReloadConfigRequest(self, request, context):
    context.abort(grpc.StatusCode.UNIMPLEMENTED,
                  "config reloads are not supported; models are discovered "
                  "by polling --model_base_path")


# ---------------------------------------------------------------- server ---


@dataclasses.dataclass(frozen=True)
class ServerConfig:
  """Everything `serve` needs; the CLI flags map one to one onto it.

  Attributes:
    model_base_path: `<base>` holding `<name>/<version>/`, or with
      `model_name` the `<base>/<name>` directory of a single model.
    model_name: serve only this model (TF Serving's single-model flags).
    host: address to bind; the loopback interface unless asked otherwise.
    port: gRPC port; 0 picks a free one.
    poll_interval_s: seconds between scans for new versions.
    version_policy: which versions to serve.
    max_batch_size: largest batch one request may send.
    max_message_bytes: largest gRPC message, both directions.
    max_workers: threads answering requests.
    metrics_port: Prometheus /metrics port (0 picks one), None for none.
    max_request_seconds: longest a request may take, whatever deadline the
      client set (or none).
    tls_cert_file: PEM certificate chain; with `tls_key_file`, serve TLS only.
    tls_key_file: PEM private key of `tls_cert_file`.
  """
  model_base_path: str
  model_name: Optional[str] = None
  host: str = "127.0.0.1"
  port: int = 8500
  poll_interval_s: float = 2.0
  version_policy: VersionPolicy = VersionPolicy()
  max_batch_size: int = 1024
  max_message_bytes: int = 64 * 1024 * 1024
  max_workers: int = 8
  metrics_port: Optional[int] = None
  max_request_seconds: float = 30.0
  tls_cert_file: Optional[str] = None
  tls_key_file: Optional[str] = None


def _host_port(host: str, port: int) -> str:
  return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ServerHandle:
  """A running server: its address, its models, and `stop`."""

  def __init__(self, grpc_server: grpc.Server, address: str, port: int,
               registry: ModelRegistry, poll_interval_s: float,
               metrics: Optional[RequestMetrics], metrics_port: Optional[int]):
    self._grpc_server = grpc_server
    self.address = address
    self.port = port
    self.metrics_port = metrics_port
    self._registry = registry
    self._metrics = metrics
    self._stopping = threading.Event()
    self._poller = threading.Thread(
        target=self._poll, args=(poll_interval_s,), name="model-poller",
        daemon=True)
    self._poller.start()

  def loaded_versions(self) -> dict[str, list[int]]:
    """Served versions by model name."""
    return self._registry.loaded_versions()

  def stop(self, grace_s: float = 5.0) -> None:
    """Stops polling, then lets in-flight requests finish for `grace_s`."""
    self._stopping.set()
    self._poller.join()
    self._grpc_server.stop(grace_s).wait()
    if self._metrics is not None:
      self._metrics.stop()

  def __enter__(self) -> "ServerHandle":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()

  def _poll(self, interval_s: float) -> None:
    while not self._stopping.wait(interval_s):
      try:
        self._registry.refresh()
      except Exception:  # pylint: disable=broad-except
        # The poller must outlive a bad scan, e.g. a missing base path.
        _LOG.exception("Scanning for model versions failed")


def _warn_about_layout(config: ServerConfig,
                       loaded: Mapping[str, list[int]]) -> None:
  numeric = [name for name in loaded if _parse_version(name) is not None]
  if config.model_name is None and numeric:
    _LOG.warning("Models named %s look like versions: to serve one model from "
                 "<base>/<name>, pass --model_name too", numeric)


def _server_credentials(config: ServerConfig,
                        ) -> Optional[grpc.ServerCredentials]:
  """TLS credentials when a certificate and key are given, else None."""
  if config.tls_cert_file is None and config.tls_key_file is None:
    return None
  if config.tls_cert_file is None or config.tls_key_file is None:
    raise ValueError("TLS needs both a certificate and a key file")
  with open(config.tls_key_file, "rb") as key, open(config.tls_cert_file,
                                                     "rb") as cert:
    return grpc.ssl_server_credentials([(key.read(), cert.read())])


def serve(config: ServerConfig) -> ServerHandle:
  """Loads the models, then serves them until `.stop()` is called.

  Returns:
    A handle with the bound `.port` and `.address`.

  Raises:
    ValueError: if only one of the TLS files is given.
    OSError: if a TLS file cannot be read.
  """
  # Read first, so a bad TLS setup fails before any model is loaded.
  credentials = _server_credentials(config)
  registry = ModelRegistry(config.model_base_path, config.model_name,
                           config.version_policy)
  registry.refresh()
  _warn_about_layout(config, registry.loaded_versions())
  metrics = RequestMetrics() if config.metrics_port is not None else None
  grpc_server = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers=config.max_workers,
                                            thread_name_prefix="serving"),
      options=[("grpc.max_send_message_length", config.max_message_bytes),
               ("grpc.max_receive_message_length", config.max_message_bytes),
               # Otherwise a second server on a taken port binds silently.
               ("grpc.so_reuseport", 0)])
  responder = _Responder(registry, metrics, config.max_request_seconds)
  limits = RequestLimits(config.max_batch_size, config.max_message_bytes)
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(registry, limits, responder), grpc_server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(
      ModelServicer(registry, responder), grpc_server)
  address = _host_port(config.host, config.port)
  port = (grpc_server.add_insecure_port(address) if credentials is None
          else grpc_server.add_secure_port(address, credentials))
  grpc_server.start()
  metrics_port = (metrics.start(config.host, config.metrics_port)
                  if metrics is not None else None)
  return ServerHandle(grpc_server, _host_port(config.host, port), port,
                      registry, config.poll_interval_s, metrics, metrics_port)


# ------------------------------------------------------------------- CLI ---


def _version_policy_flag(text: str) -> VersionPolicy:
  try:
    return VersionPolicy.parse(text)
  except ValueError as error:
    raise argparse.ArgumentTypeError(str(error)) from error


def _positive_float(text: str) -> float:
  value = float(text)
  if not value > 0:
    raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
  return value


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m serving.server",
      description="Serves TF Serving-layout SavedModels over TF Serving's "
                  "gRPC API (Predict, GetModelMetadata, GetModelStatus).")
  parser.add_argument(
      "--model_base_path", required=True,
      help="<base> holding <name>/<version>/ for every model; with "
           "--model_name, the <base>/<name> directory of that one model")
  parser.add_argument("--model_name",
                      help="serve only this model, from --model_base_path")
  parser.add_argument("--bind_address", default="127.0.0.1",
                      help="address to listen on (default: %(default)s)")
  parser.add_argument("--port", type=int, default=8500,
                      help="gRPC port, 0 for any free one "
                           "(default: %(default)s)")
  parser.add_argument(
      "--file_system_poll_wait_seconds", type=float, default=2.0,
      help="seconds between scans for new versions (default: %(default)s)")
  parser.add_argument(
      "--version_policy", type=_version_policy_flag, default=VersionPolicy(),
      help="latest:N, all, or specific:V1,V2 (default: latest:1)")
  parser.add_argument("--max_batch_size", type=int, default=1024,
                      help="largest batch per request (default: %(default)s)")
  parser.add_argument(
      "--max_message_bytes", type=int, default=64 * 1024 * 1024,
      help="largest gRPC message, sent or received (default: %(default)s)")
  parser.add_argument("--grpc_max_threads", type=int, default=8,
                      help="threads answering requests (default: %(default)s)")
  parser.add_argument(
      "--metrics_port", type=int, default=None,
      help="serve Prometheus /metrics on this port (default: off)")
  parser.add_argument(
      "--max_request_seconds", type=_positive_float, default=30.0,
      help="answer DEADLINE_EXCEEDED to requests taking longer, whatever the "
           "client's deadline (default: %(default)s)")
  parser.add_argument("--tls_cert_file",
                      help="PEM certificate chain; with --tls_key_file the "
                           "port speaks TLS only (default: plaintext)")
  parser.add_argument("--tls_key_file",
                      help="PEM private key of --tls_cert_file")
  return parser


def parse_flags(argv: Optional[list[str]] = None) -> ServerConfig:
  """Maps command-line flags onto a ServerConfig."""
  parser = _parser()
  flags = parser.parse_args(argv)
  if (flags.tls_cert_file is None) != (flags.tls_key_file is None):
    parser.error("--tls_cert_file and --tls_key_file go together")
  return ServerConfig(
      model_base_path=flags.model_base_path, model_name=flags.model_name,
      host=flags.bind_address, port=flags.port,
      poll_interval_s=flags.file_system_poll_wait_seconds,
      version_policy=flags.version_policy, max_batch_size=flags.max_batch_size,
      max_message_bytes=flags.max_message_bytes,
      max_workers=flags.grpc_max_threads, metrics_port=flags.metrics_port,
      max_request_seconds=flags.max_request_seconds,
      tls_cert_file=flags.tls_cert_file, tls_key_file=flags.tls_key_file)


def _print_startup(config: ServerConfig, handle: ServerHandle) -> None:
  print(f"Serving gRPC on {handle.address}", flush=True)
  if handle.metrics_port is not None:
    print("Metrics on http://"
          f"{_host_port(config.host, handle.metrics_port)}/metrics", flush=True)
  loaded = handle.loaded_versions()
  if not loaded:
    print(f"  no models loaded yet; polling {config.model_base_path}",
          flush=True)
  for name, versions in sorted(loaded.items()):
    print(f"  model {name}: versions {versions}", flush=True)


def main(argv: Optional[list[str]] = None) -> int:
  logging.basicConfig(level=logging.INFO,
                      format="%(asctime)s %(levelname)s %(name)s: %(message)s")
  config = parse_flags(argv)
  stopping = threading.Event()
  # Installed before serving, so an early signal still shuts down cleanly.
  previous_handlers = {
      signal_number: signal.signal(signal_number, lambda *_: stopping.set())
      for signal_number in (signal.SIGINT, signal.SIGTERM)}
  try:
    with serve(config) as handle:
      _print_startup(config, handle)
      stopping.wait()
      print("Stopping: finishing in-flight requests", flush=True)
  finally:
    for signal_number, handler in previous_handlers.items():
      signal.signal(signal_number, handler)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
