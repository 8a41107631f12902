"""What a test reads from a SavedModel's graph: its ops and its constants.

A ranker served on stored image embeddings must hold them and must not
decode an image at request time; these read both off the saved graph.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

# The ops that decode an image file.
DECODE_OPS = frozenset({"DecodeJpeg", "DecodePng", "DecodeImage", "DecodeBmp",
                        "DecodeGif", "DecodeAndCropJpeg", "DecodeWebP"})


def saved_model_nodes(export_dir: str) -> list:
  """Every node of a SavedModel's graph and of its functions."""
  saved = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"),
                         "rb") as stream:
    saved.ParseFromString(stream.read())
  nodes = []
  for meta_graph in saved.meta_graphs:
    nodes += meta_graph.graph_def.node
    for function in meta_graph.graph_def.library.function:
      nodes += function.node_def
  return nodes


def decode_ops(export_dir: str) -> set[str]:
  """The image-decoding op types in the SavedModel; empty when none."""
  return {node.op for node in saved_model_nodes(export_dir)} & DECODE_OPS


def float_constants(export_dir: str) -> list[np.ndarray]:
  """Every float32 constant the SavedModel holds."""
  return [tf.make_ndarray(node.attr["value"].tensor)
          for node in saved_model_nodes(export_dir)
          if node.op == "Const"
          and node.attr["dtype"].type == tf.float32.as_datatype_enum]
