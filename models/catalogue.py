"""The item catalogue a catalogue-scoring model serves, and raw request inputs.

`ItemCatalogue` holds every item of the Trainer's item vocabulary with its
candidate features and train counts; `complete_raw_features` turns a
request's dense raw features into the Transform graph's input format, so
every export accepts the same inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import train_inputs
from transforms import preprocessing


@dataclasses.dataclass(frozen=True)
class ItemCatalogue:
  """Every item of the item vocabulary, indexed by transformed item index.

  Attributes:
    item_ids: `[num_indices]` raw ids; "" at the padding and OOV indices.
    candidate_features: transformed candidate-tower inputs, one row per index.
    train_counts: `[num_indices]` positives per item in the train split.
  """
  item_ids: np.ndarray
  candidate_features: Mapping[str, np.ndarray]
  train_counts: np.ndarray

  @property
  def sampling_probability(self) -> np.ndarray:
    return self.train_counts / max(self.train_counts.sum(), 1)


def train_split_catalogue(fn_args, tft_output) -> ItemCatalogue:
  """`build_catalogue` over a Trainer's train split and item vocabulary.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
  """
  return build_catalogue(
      train_inputs.input_dataset(fn_args, fn_args.train_files, tft_output,
                                 4096, shuffle=False),
      [token.decode() for token in
       tft_output.vocabulary_by_name(features.ITEM_VOCAB)],
      preprocessing.vocabulary_size(tft_output, features.ITEM_VOCAB))


def build_catalogue(train_dataset: tf.data.Dataset, item_vocabulary: list[str],
                    num_indices: int) -> ItemCatalogue:
  """Collects candidate features and train counts from the train split.

  Args:
    train_dataset: batches of transformed train features.
    item_vocabulary: the item vocabulary, in index order (index = position+1).
    num_indices: number of item indices, padding and OOV included.

  Returns:
    The catalogue of all vocabulary items.
  """
  counts = np.zeros(num_indices, np.float64)
  candidate_features = {
      features.ITEM_INDEX: np.arange(num_indices, dtype=np.int64),
      features.TITLE_TOKEN_INDICES: np.zeros(
          (num_indices, features.TITLE_LENGTH), np.int64),
      features.CATEGORY_INDICES: np.zeros(
          (num_indices, features.CATEGORY_LENGTH), np.int64),
  }
  for batch in train_dataset:
    item_index = batch[features.ITEM_INDEX].numpy()
    np.add.at(counts, item_index, 1)
    for name in (features.TITLE_TOKEN_INDICES, features.CATEGORY_INDICES):
      candidate_features[name][item_index] = batch[name].numpy()
  item_ids = np.array([""] + list(item_vocabulary) +
                      [""] * (num_indices - len(item_vocabulary) - 1), dtype=object)
  return ItemCatalogue(item_ids=item_ids, candidate_features=candidate_features,
                       train_counts=counts)


def _dense_to_raw(spec, tensor: tf.Tensor):
  """Converts a client's dense tensor to the raw feature format of `spec`."""
  if isinstance(spec, tf.io.VarLenFeature):
    return tf.sparse.from_dense(tensor)
  return tf.reshape(tensor, [-1, 1])


def _empty_raw_feature(spec, batch_size: tf.Tensor):
  if isinstance(spec, tf.io.VarLenFeature):
    return tf.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype),
                           tf.stack([tf.cast(batch_size, tf.int64), 0]))
  return tf.zeros([batch_size, 1], spec.dtype)


def complete_raw_features(raw: Mapping[str, tf.Tensor],
                          raw_feature_spec: Mapping[str, object]
                          ) -> dict[str, tf.Tensor]:
  """A request's dense raw features in the Transform graph's input format.

  Every feature of `raw_feature_spec` the request does not send is empty, so
  that clients send only what they have, and every export accepts the same
  inputs.

  Args:
    raw: dense `[batch, ...]` tensors by raw feature name.
    raw_feature_spec: the Transform's raw feature spec.
  """
  batch_size = tf.shape(next(iter(raw.values())))[0]
  return {name: (_dense_to_raw(spec, raw[name]) if name in raw
                 else _empty_raw_feature(spec, batch_size))
          for name, spec in raw_feature_spec.items()}
