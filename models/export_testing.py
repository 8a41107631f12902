"""Stand-ins for the Transform graph, for tests of the retrieval exports.

Raw item ids "1", "2", ... are their own item indices and "" is padding, so
a test's catalogue and histories read as plain numbers.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from data import features

RAW_FEATURE_SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.HISTORY_ITEM_IDS: tf.io.VarLenFeature(tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
}


def _item_indices(ids: tf.Tensor) -> tf.Tensor:
  return tf.strings.to_number(tf.where(ids == "", "0", ids), tf.int64)


def fake_transform(raw):
  """Stands in for the Transform layer on `RAW_FEATURE_SPEC`'s features."""
  return {
      features.USER_INDEX: tf.zeros_like(
          tf.reshape(raw[features.TIMESTAMP], [-1])),
      features.HISTORY_ITEM_INDICES: _item_indices(
          tf.sparse.to_dense(raw[features.HISTORY_ITEM_IDS])),
      features.ITEM_INDEX: _item_indices(
          tf.reshape(raw[features.ITEM_ID], [-1])),
  }


def query_inputs(histories: Sequence[Sequence[str]]) -> dict[str, tf.Tensor]:
  """A query signature's inputs for one user per (equal-length) history."""
  return dict(user_id=tf.constant(["u"] * len(histories)),
              history_item_ids=tf.constant(histories),
              timestamp=tf.zeros([len(histories)], tf.int64))


def serialized_example(target: str, history: Sequence[str]) -> bytes:
  """An eval tf.Example: `target` chosen after `history`."""
  example = tf.train.Example()
  for name, values in ((features.USER_ID, [b"u"]),
                       (features.ITEM_ID, [target.encode()]),
                       (features.HISTORY_ITEM_IDS,
                        [item.encode() for item in history])):
    example.features.feature[name].bytes_list.value.extend(values)
  example.features.feature[features.TIMESTAMP].int64_list.value.append(0)
  return example.SerializeToString()
