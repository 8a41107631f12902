"""What Predict, GetModelMetadata and GetModelStatus answer.

Transport-free: each handler takes the request proto and returns the response
proto, or raises `errors.ServingError` with the status code and message TF
Serving would answer with. `serving.server` wires them to gRPC.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional, Protocol

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2

from models import serving_names
from serving import errors
from serving import model_registry
from serving import servables

SIGNATURE_DEF_FIELD = "signature_def"
# What one decoded string costs before its content: a numpy object pointer and
# TF's tstring. A request declaring a million empty strings allocates this much.
_DECODED_STRING_BYTES = 32
# TF Serving answers with the typed fields (float_val, ...) rather than
# tensor_content; clients that read e.g.
# `outputs[serving_names.SCORES].float_val` directly rely on it.
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


class Resolver(Protocol):
  """Finds the servable a ModelSpec asks for: a `ModelRegistry`, or the
  server's per-request view of one, which remembers it for the metrics."""

  def resolve(self, model_spec: model_pb2.ModelSpec) -> servables.Servable:
    ...


class HistoryCompleter(Protocol):
  """Fills in the histories a request left to the online store
  (`serving.stored_histories.StoredHistories`)."""

  def fillable(self, signature: servables.Signature) -> frozenset[str]:
    """The inputs of `signature` a request may leave out."""
    ...

  def complete(self, signature: servables.Signature,
               arrays: Mapping[str, np.ndarray],
               ) -> tuple[Mapping[str, np.ndarray], Optional[np.ndarray]]:
    """`(inputs filled in, each row's history source or None)`."""
    ...


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


def _check_input_names(specs: Mapping[str, servables.InputSpec],
                       names: Iterable[str],
                       fillable: frozenset[str] = frozenset()) -> None:
  names = set(names)
  required = {name for name, spec in specs.items()
              if spec.required and name not in fillable}
  unexpected = sorted(names - specs.keys())
  missing = sorted(required - names)
  if unexpected or missing:
    raise errors.invalid_argument(
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
    raise errors.invalid_argument(
        f'input "{name}" must have a known rank and no negative '
        "dimensions")
  elements = np.prod(dims, dtype=np.float64)
  if elements * _decoded_bytes_per_element(proto.dtype) > max_decoded_bytes:
    raise errors.invalid_argument(
        f'input "{name}" has shape {dims}: {elements:.0f} elements '
        f"would decode to more than {max_decoded_bytes} bytes")
  return tf.TensorShape(dims)


def _decode_input(name: str, spec: servables.InputSpec,
                  proto: tensor_pb2.TensorProto,
                  max_decoded_bytes: int) -> np.ndarray:
  """Checks dtype and shape on the proto's header, then decodes it."""
  if proto.dtype not in {dtype.as_datatype_enum for dtype in spec.dtypes}:
    expected = " or ".join(_dtype_name(d.as_datatype_enum) for d in spec.dtypes)
    raise errors.invalid_argument(
        f'input "{name}" has dtype {_dtype_name(proto.dtype)}, '
        f"expected {expected}")
  shape = _request_shape(name, proto, max_decoded_bytes)
  if not spec.shape.is_compatible_with(shape):
    raise errors.invalid_argument(
        f'input "{name}" has shape {shape}, expected {spec.shape}')
  try:
    return tf.make_ndarray(proto)
  except Exception as error:  # pylint: disable=broad-except
    # Malformed protos fail in numpy with many exception types.
    raise errors.invalid_argument(
        f'input "{name}" is not a valid TensorProto: {error}') from error


def _check_batch_size(specs: Mapping[str, servables.InputSpec],
                      arrays: Mapping[str, np.ndarray],
                      max_batch_size: int) -> None:
  for name, array in arrays.items():
    if specs[name].batched and array.shape[0] > max_batch_size:
      raise errors.invalid_argument(
          f'input "{name}" has batch size {array.shape[0]}, more '
          f"than the server's --max_batch_size={max_batch_size}")


def decode_inputs(signature: servables.Signature,
                  protos: Mapping[str, tensor_pb2.TensorProto],
                  limits: RequestLimits,
                  fillable: frozenset[str] = frozenset(),
                  ) -> dict[str, np.ndarray]:
  """Validates a request's inputs against a signature and decodes them.

  Args:
    signature: what the request runs.
    protos: the request's inputs.
    limits: bounds on their sizes.
    fillable: required inputs the request may leave out, because the server
      fills them in (the history store).

  Raises:
    ServingError: INVALID_ARGUMENT naming the offending input.
  """
  _check_input_names(signature.inputs, protos.keys(), fillable)
  arrays = {name: _decode_input(name, signature.inputs[name], proto,
                                limits.max_decoded_bytes)
            for name, proto in protos.items()}
  _check_batch_size(signature.inputs, arrays, limits.max_batch_size)
  return arrays


def _output_names(signature: servables.Signature,
                  output_filter: Iterable[str]) -> tuple[str, ...]:
  output_filter = tuple(output_filter)
  for alias in output_filter:
    if alias not in signature.outputs:
      raise errors.invalid_argument(
          f"output tensor alias not found in signature: {alias} "
          f"Outputs expected to be in the set "
          f"{{{','.join(signature.outputs)}}}.")
  if len(set(output_filter)) != len(output_filter):
    raise errors.invalid_argument(
        f"duplicate output tensor alias in {list(output_filter)}")
  return output_filter or signature.outputs


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
  """Encodes an output as TF Serving does, in the dtype's typed field."""
  proto = tf.make_tensor_proto(array)
  field = _PROTO_FIELD_BY_DTYPE.get(proto.dtype)
  if field is not None and proto.tensor_content:
    proto.tensor_content = b""
    getattr(proto, field).extend(np.asarray(array).ravel().tolist())
  return proto


def _signature_of(servable: servables.Servable,
                  signature_name: str) -> servables.Signature:
  signature = servable.signatures.get(signature_name)
  if signature is None:
    # TF Serving answers FAILED_PRECONDITION here, not INVALID_ARGUMENT.
    raise errors.ServingError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f'Serving signature key "{signature_name}" not found. Model '
        f'"{servable.name}" version {servable.version} has '
        f"{sorted(servable.signatures)}.")
  return signature


def predict(resolver: Resolver, limits: RequestLimits,
            request: predict_pb2.PredictRequest,
            deadline: errors.Deadline,
            histories: Optional[HistoryCompleter] = None,
            ) -> predict_pb2.PredictResponse:
  """Runs one Predict request.

  The model's graph cannot be interrupted once it runs, so the deadline is
  checked before it starts and again once it is done. With `histories`, a
  request may leave the user's history to the online store; the response
  then says where each row's history came from (`HISTORY_SOURCE`).

  Raises:
    ServingError: with the status code TF Serving would answer with, or
      DEADLINE_EXCEEDED.
  """
  if not request.HasField("model_spec"):
    raise errors.invalid_argument("Missing ModelSpec")
  servable = resolver.resolve(request.model_spec)
  signature_name = (request.model_spec.signature_name or
                    serving_names.DEFAULT)
  signature = _signature_of(servable, signature_name)
  where = (f'model "{servable.name}" version {servable.version} signature '
           f'"{signature_name}"')
  try:
    fillable = (frozenset() if histories is None
                else histories.fillable(signature))
    inputs = decode_inputs(signature, request.inputs, limits, fillable)
    history_source = None
    if fillable:
      inputs, history_source = histories.complete(signature, inputs)
    output_names = _output_names(signature, request.output_filter)
    deadline.check("before the model ran")
    outputs = signature.run(inputs)
    deadline.check("while the model ran")
  except errors.ServingError as error:
    raise errors.ServingError(
        error.code, f"{where}: {error.message}") from error
  except tf.errors.OpError as error:
    raise errors.ServingError(errors.grpc_code(error),
                              f"{where}: {error.message}") from error
  response = predict_pb2.PredictResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.model_spec.signature_name = signature_name
  for name in output_names:
    response.outputs[name].CopyFrom(to_tensor_proto(outputs[name]))
  if history_source is not None:
    response.outputs[serving_names.HISTORY_SOURCE].CopyFrom(
        to_tensor_proto(history_source))
  return response


def model_metadata(resolver: Resolver,
                   request: get_model_metadata_pb2.GetModelMetadataRequest,
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  """Answers GetModelMetadata: the servable's SignatureDefMap.

  Raises:
    ServingError: as TF Serving would.
  """
  if not request.HasField("model_spec"):
    raise errors.invalid_argument("Missing ModelSpec")
  if not request.metadata_field:
    raise errors.invalid_argument(
        "GetModelMetadataRequest must specify at least one metadata_field")
  for field in request.metadata_field:
    if field != SIGNATURE_DEF_FIELD:
      raise errors.invalid_argument(f"Metadata field {field} is not supported")
  servable = resolver.resolve(request.model_spec)
  signature_def_map = get_model_metadata_pb2.SignatureDefMap()
  for name, signature_def in servable.signature_defs.items():
    signature_def_map.signature_def[name].CopyFrom(signature_def)
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map)
  return response


def model_status(registry: model_registry.ModelRegistry,
                 request: get_model_status_pb2.GetModelStatusRequest,
                 ) -> get_model_status_pb2.GetModelStatusResponse:
  """Answers GetModelStatus for one version or all tracked versions.

  Raises:
    ServingError: NOT_FOUND as TF Serving would.
  """
  if not request.HasField("model_spec"):
    raise errors.invalid_argument("Missing ModelSpec")
  name = request.model_spec.name
  errors.check_model_name(name)
  statuses = registry.version_statuses(name)
  if request.model_spec.HasField("version"):
    version = request.model_spec.version.value
    if version not in statuses:
      raise errors.ServingError(
          grpc.StatusCode.NOT_FOUND,
          f"Could not find version {version} of model {name}")
    statuses = {version: statuses[version]}
  if not statuses:
    raise errors.ServingError(grpc.StatusCode.NOT_FOUND,
                              f"Could not find any versions of model {name}")
  response = get_model_status_pb2.GetModelStatusResponse()
  for version in sorted(statuses, reverse=True):
    response.model_version_status.add().CopyFrom(statuses[version])
  return response
