"""Loaded model versions and the signatures Predict can run on them.

A version directory holds a plain-TF SavedModel; when it also holds a ScaNN
index (`serving/scann_index.py`) it gets one extra signature,
`retrieve_scann`: raw query features -> the query tower (`query_embedding`)
-> approximate top-k, history items excluded. A multi-vector query tower
(`[batch, K, dim]` embeddings) has each of a user's K vectors search the
index and the K lists merged (`serving/multi_vector.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import types
from typing import Mapping, Optional, Protocol

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from data import features
from models import serving_names
from serving import errors
from serving import scann_index

_LOG = logging.getLogger(__name__)

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
DEFAULT_K = 10
MAX_K = 1000

SAVED_MODEL_FILE = "saved_model.pb"
_SERVE_TAG = "serve"


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

  Items in the request's history (unless its `filter_seen` is False) and in
  `exclude_item_ids` are never returned; rows are padded with "" and -inf scores when the exclusions leave
  fewer than k items. When the query tower embeds a user as K vectors, each
  vector searches the index and the lists merge by the index's `merge_rule`
  (`serving.multi_vector`), into k distinct items per user.
  """
  outputs = (serving_names.ITEM_IDS, serving_names.SCORES)

  def __init__(self, query: SavedModelSignature,
               index: scann_index.ScannIndex):
    self._query = query
    self._index = index
    self.max_k = min(MAX_K, len(index.item_ids))
    self.inputs = {
        **query.inputs,
        # Scalar or [1]: checked in `_k`, a TensorShape cannot say "either".
        serving_names.SCANN_K: InputSpec((tf.int32, tf.int64), tf.TensorShape(None),
                           required=False),
        serving_names.SCANN_EXCLUDE_ITEM_IDS: InputSpec((tf.string,), tf.TensorShape([None, None]),
                                 required=False),
        # Scalar or [1], like k.
        serving_names.FILTER_SEEN: InputSpec((tf.bool,), tf.TensorShape(None),
                                             required=False),
    }

  def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    k = self._k(inputs.get(serving_names.SCANN_K))
    queries = self._query.run({name: inputs[name] for name in
                               self._query.inputs})[serving_names.EMBEDDING]
    item_ids, scores = self._index.search(
        queries, k, exclude_ids=self._excluded_ids(inputs, len(queries)))
    return {serving_names.ITEM_IDS: item_ids, serving_names.SCORES: scores}

  def signature_def(self) -> meta_graph_pb2.SignatureDef:
    """The hand-built SignatureDef that GetModelMetadata advertises."""
    signature_def = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD_NAME)
    for name, spec in self.inputs.items():
      signature_def.inputs[name].CopyFrom(
          _tensor_info(spec.dtypes[0], spec.shape))
    signature_def.outputs[serving_names.ITEM_IDS].CopyFrom(
        _tensor_info(tf.string, tf.TensorShape([None, None])))
    signature_def.outputs[serving_names.SCORES].CopyFrom(
        _tensor_info(tf.float32, tf.TensorShape([None, None])))
    return signature_def

  def _k(self, value: Optional[np.ndarray]) -> int:
    if value is None:
      return min(DEFAULT_K, self.max_k)
    if value.ndim > 1 or value.size != 1:
      raise errors.invalid_argument(
          f'input "{serving_names.SCANN_K}" must be a scalar or have shape [1], '
          f"got shape {list(value.shape)}")
    k = int(value.reshape(-1)[0])
    if not 1 <= k <= self.max_k:
      raise errors.invalid_argument(
          f'input "{serving_names.SCANN_K}" must be in [1, {self.max_k}] '
          f"(at most {MAX_K} and the number of indexed items), "
          f"got {k}")
    return k

  def _excluded_ids(self, inputs: Mapping[str, np.ndarray],
                    batch_size: int) -> list[set[str]]:
    excluded = [set() for _ in range(batch_size)]
    names = (features.HISTORY_ITEM_IDS, serving_names.SCANN_EXCLUDE_ITEM_IDS)
    if not filter_seen(inputs.get(serving_names.FILTER_SEEN)):
      names = names[1:]
    for name in names:
      if name not in inputs:
        continue
      if inputs[name].shape[0] != batch_size:
        raise errors.invalid_argument(
            f'input "{name}" has {inputs[name].shape[0]} rows but '
            f"the batch has {batch_size}")
      for row_ids, row in zip(excluded, inputs[name]):
        row_ids.update(_decode_ids(row))
    return excluded


def filter_seen(value: Optional[np.ndarray]) -> bool:
  """The `filter_seen` input: True when absent.

  Raises:
    ServingError: INVALID_ARGUMENT unless it is a scalar or has shape [1].
  """
  if value is None:
    return True
  if value.ndim > 1 or value.size != 1:
    raise errors.invalid_argument(
        f'input "{serving_names.FILTER_SEEN}" must be a scalar or have shape '
        f"[1], got shape {list(value.shape)}")
  return bool(value.reshape(-1)[0])


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
  with tf.io.gfile.GFile(os.path.join(path, SAVED_MODEL_FILE), "rb") as f:
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
  query = signatures.get(serving_names.QUERY_EMBEDDING)
  if query is None or serving_names.EMBEDDING not in query.outputs:
    raise ValueError(
        f'{path} has a ScaNN index but no "{serving_names.QUERY_EMBEDDING}" '
        f'signature with an "{serving_names.EMBEDDING}" output')
  embedding_shape = query.output_shapes[serving_names.EMBEDDING]
  if embedding_shape.rank not in (2, 3):
    raise ValueError(
        f'{path}: "{serving_names.QUERY_EMBEDDING}" must return [batch, dim] '
        f"or [batch, vectors, dim] embeddings, got {embedding_shape}")
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
    if serving_names.RETRIEVE_SCANN in signatures:
      _LOG.warning("%s defines %s itself; its ScaNN index is not served",
                   path, serving_names.RETRIEVE_SCANN)
    else:
      scann_signature = _scann_signature(signatures, path)
      signatures[serving_names.RETRIEVE_SCANN] = scann_signature
      signature_defs[serving_names.RETRIEVE_SCANN] = (
          scann_signature.signature_def())
  return Servable(name, version, types.MappingProxyType(signatures),
                  types.MappingProxyType(signature_defs), saved_model)

