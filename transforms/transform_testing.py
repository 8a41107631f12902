"""Runs `preprocessing_fn` through tf.Transform in process, for tests.

Rows are raw feature dicts as `data.examples` builds them; a feature a row
lacks (e.g. an eval row's per-position history features) is an empty list,
as tf.Example parsing gives it.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import schema_utils

from transforms import preprocessing


def raw_metadata(schema_path: str) -> tft.DatasetMetadata:
  """The raw examples' metadata from a schema text file."""
  with open(schema_path) as schema_file:
    return tft.DatasetMetadata(
        text_format.Parse(schema_file.read(), schema_pb2.Schema()))


def instance_dicts(rows: list[dict], metadata: tft.DatasetMetadata
                   ) -> list[dict]:
  """Rows as tf.Transform's instance dicts, typed by the schema."""
  spec = schema_utils.schema_as_feature_spec(metadata.schema).feature_spec
  def value(row, name):
    dtype = spec[name].dtype.as_numpy_dtype
    if name not in row:
      return np.array([], dtype)
    if isinstance(row[name], list):
      return np.array(row[name], dtype)
    return np.array([row[name]], dtype)
  return [{name: value(row, name) for name in spec} for row in rows]


def analyze_and_transform(rows: list[dict], metadata: tft.DatasetMetadata,
                          temp_dir: str
                          ) -> tuple[list[dict], tft.TFTransformOutput]:
  """`(transformed rows, the Transform output)`, analysed on `rows`."""
  with tft_beam.Context(temp_dir=temp_dir, force_tf_compat_v1=False):
    (transformed, _), transform_fn = (
        (instance_dicts(rows, metadata), metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing.preprocessing_fn))
    output_dir = os.path.join(temp_dir, "transform_output")
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  return transformed, tft.TFTransformOutput(output_dir)
