"""Compares what InteractionExampleGen wrote with `examples.build_rows`.

Shared by the equality tests and `benchmarks.example_gen`: examples are
compared as multisets of their features, so neither the order of the rows
(sharded output has none) nor the order of the features matters.
"""

from __future__ import annotations

import collections
import os

import tensorflow as tf

from tfx_pipeline.components import interaction_example_beam


def canonical(example: tf.train.Example) -> tuple:
  """A hashable form of an example that ignores feature order."""
  features = []
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    features.append((name, tuple(getattr(feature, kind).value) if kind else ()))
  return tuple(sorted(features))


def written_examples(split_dir: str) -> collections.Counter:
  """The examples of every TFRecord file in `split_dir`, as a multiset."""
  files = tf.io.gfile.glob(os.path.join(split_dir, "*"))
  if not files:
    raise FileNotFoundError(f"no examples written in {split_dir}")
  return collections.Counter(
      canonical(tf.train.Example.FromString(record.numpy()))
      for record in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def expected_examples(rows: list[dict]) -> collections.Counter:
  """`build_rows` rows as the multiset `written_examples` compares with."""
  return collections.Counter(
      canonical(interaction_example_beam.to_tf_example(row)) for row in rows)
