"""Train examples stored once per user give the Trainer the same rows.

The per-interaction rows of `examples.build_rows` (each with a copy of its
history) and the per-user train examples of `examples.build_examples` go
through the same `preprocessing_fn`, each analysed on its own. The
vocabularies and time scaling must agree, and the per-user examples,
transformed and expanded by `models.user_rows` as the Trainer does, must be
the transformed rows, in order: on one log that holds a sample of each
shared dataset (one analysis of each form, where each takes half a
minute), with CTR negatives.
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from data import contract
from data import examples
from data import features
from data import importers
from models import user_rows
from tests import prerequisites
from tfx_pipeline import config as config_lib
from transforms import transform_testing

DATASETS = ("movielens-100k", "amazon-grocery")
# Users of each dataset, the first by id: the in-process Transform takes
# minutes at a few thousand rows.
SAMPLE_USERS = 12
VOCABULARIES = (features.ITEM_VOCAB, features.USER_VOCAB,
                features.VIDEO_VOCAB, features.TITLE_TOKEN_VOCAB,
                features.CATEGORY_VOCAB)
# The features of a user's transformed example that hold one value or one
# width of values per positive or per negative.
SEQUENCE_FEATURES = (
    features.SEQUENCE_ITEM_INDICES, features.SEQUENCE_IS_VIDEO,
    features.SEQUENCE_TITLE_TOKEN_INDICES, features.SEQUENCE_CATEGORY_INDICES,
    features.SEQUENCE_QUERY_TOKEN_INDICES, features.SEQUENCE_HOUR_OF_DAY,
    features.SEQUENCE_DAY_OF_WEEK, features.SEQUENCE_TIMESTAMP_Z,
    features.NEGATIVE_ITEM_INDICES, features.NEGATIVE_TITLE_TOKEN_INDICES,
    features.NEGATIVE_CATEGORY_INDICES)


def _analysed(rows: list[dict]) -> tuple[list[dict], dict]:
  """`(transformed rows, vocabulary name -> entries)`, analysed on `rows`."""
  with tempfile.TemporaryDirectory() as temp_dir:
    transformed, tft_output = transform_testing.analyze_and_transform(
        rows, transform_testing.raw_metadata(config_lib.CURATED_SCHEMA),
        temp_dir)
    return transformed, {name: tft_output.vocabulary_by_name(name)
                         for name in VOCABULARIES}


def _batch(transformed: list[dict]) -> dict[str, tf.Tensor]:
  """Transformed instances as one batch, the sequences ragged."""
  batch = {name: np.stack([row[name] for row in transformed])
           for name in (features.USER_INDEX,)}
  for name in SEQUENCE_FEATURES:
    values = [row[name] for row in transformed]
    batch[name] = tf.RaggedTensor.from_row_lengths(
        np.concatenate(values), [len(value) for value in values])
  return batch


def _sample(name: str) -> contract.Dataset:
  """The first `SAMPLE_USERS` users of a shared dataset and its items, every
  id prefixed with the dataset's name. The item relations, which no example
  holds, are left empty."""
  dataset = importers.IMPORTERS[name](prerequisites.shared_data_root(name))
  interactions = dataset.interactions
  users = sorted(interactions["user_id"].unique(), key=int)[:SAMPLE_USERS]
  interactions = interactions[interactions["user_id"].isin(users)].copy()
  items = dataset.items.assign(related_items="", complement_items="",
                               substitute_items="")
  for frame, columns in ((interactions, ("user_id", "item_id")),
                         (items, ("item_id",))):
    for column in columns:
      frame[column] = f"{name}/" + frame[column].astype(str)
  return contract.Dataset(interactions, items)


@pytest.fixture(scope="module")
def both_forms():
  """Both analyses of the samples of both shared datasets, with 2 CTR
  negatives."""
  samples = [_sample(name) for name in DATASETS]
  dataset = contract.Dataset(
      pd.concat([sample.interactions for sample in samples],
                ignore_index=True),
      pd.concat([sample.items for sample in samples], ignore_index=True))
  options = {"ctr_negatives": 2, "negative_seed": 7}
  rows = examples.build_rows(dataset, **options).train
  stored = examples.build_examples(dataset, **options).train
  assert len(stored) == len(DATASETS) * SAMPLE_USERS < len(rows)
  return _analysed(rows), _analysed(stored)


def test_vocabularies_are_those_of_the_rows(both_forms):
  (_, row_vocabularies), (_, stored_vocabularies) = both_forms
  for name in VOCABULARIES:
    assert stored_vocabularies[name] == row_vocabularies[name], name


def test_expanded_user_examples_are_the_transformed_rows(both_forms):
  (rows, _), (stored, _) = both_forms
  expanded = user_rows.expand_user_rows(_batch(stored))
  assert set(expanded) == set(user_rows.ROW_SHAPES)
  for name in user_rows.ROW_SHAPES:
    expected = np.stack([np.reshape(row[name], user_rows.ROW_SHAPES[name])
                         for row in rows])
    if name == features.TIMESTAMP_Z:
      # float32 sums of ~1e9 s timestamps, batched differently on each side.
      np.testing.assert_allclose(expanded[name].numpy(), expected, atol=1e-4)
    else:
      np.testing.assert_array_equal(expanded[name].numpy(), expected, name)
