"""Runs `preprocessing_fn` through tf.Transform on a few known examples."""

import tempfile

import numpy as np
import pytest

from data import examples
from data import features
from data import importers
from data import user_sequences
from tests import prerequisites
from tfx_pipeline import config as config_lib
from transforms import preprocessing
from transforms import transform_testing

RAW = [
    {"user_id": "u1", "item_id": "a", "timestamp": 0, "label": 1.0,
     "item_type": "item", "query": "", "item_title": "Toy Story 1995",
     "item_categories": ["Animation", "Comedy"], "history_item_ids": [],
     "history_queries": [], "seen_item_ids": [], "user_activity_bucket": "light",
     "item_popularity_bucket": "head"},
    {"user_id": "u1", "item_id": "b", "timestamp": 90000, "label": 1.0,
     "item_type": "item", "query": "", "item_title": "Heat",
     "item_categories": ["Crime"], "history_item_ids": ["a", "zz"],
     "history_queries": ["", "heat pacino"], "seen_item_ids": ["a", "zz", "c"],
     "user_activity_bucket": "light", "item_popularity_bucket": "head"},
    {"user_id": "u2", "item_id": "a", "timestamp": 3600 * 5, "label": 1.0,
     "item_type": "item", "query": "Heat Pacino", "item_title": "Toy Story 1995",
     "item_categories": ["Animation", "Comedy"], "history_item_ids": ["b"],
     "history_queries": ["Heat Pacino"], "seen_item_ids": [],
     "user_activity_bucket": "light", "item_popularity_bucket": "head"},
]


def _transform():
  with tempfile.TemporaryDirectory() as temp_dir:
    transformed, tft_output = transform_testing.analyze_and_transform(
        RAW, transform_testing.raw_metadata(config_lib.CURATED_SCHEMA),
        temp_dir)
    vocab = [v.decode() for v in tft_output.vocabulary_by_name(
        features.ITEM_VOCAB)]
    sizes = {name: preprocessing.vocabulary_size(tft_output, name)
             for name in (features.ITEM_VOCAB, features.USER_VOCAB)}
  return transformed, vocab, sizes


def test_transformed_features_have_fixed_shapes_and_known_values():
  transformed, item_vocab, sizes = _transform()
  index = {item: i + 1 for i, item in enumerate(item_vocab)}
  oov = len(item_vocab) + 1
  assert sorted(item_vocab) == ["a", "b"]
  assert sizes[features.ITEM_VOCAB] == 4  # padding + 2 items + OOV
  assert sizes[features.USER_VOCAB] == 4

  first, second, third = transformed
  assert first[features.ITEM_INDEX] == index["a"]
  assert list(first[features.HISTORY_ITEM_INDICES]) == [0] * features.HISTORY_LENGTH
  assert first[features.HISTORY_LENGTH_FEATURE] == 0
  # Unknown history ids map to the OOV index, padding stays 0.
  assert list(second[features.HISTORY_ITEM_INDICES][:3]) == [index["a"], oov, 0]
  assert second[features.HISTORY_LENGTH_FEATURE] == 2
  assert list(third[features.HISTORY_ITEM_INDICES][:2]) == [index["b"], 0]

  assert len(first[features.TITLE_TOKEN_INDICES]) == features.TITLE_LENGTH
  assert np.count_nonzero(first[features.TITLE_TOKEN_INDICES]) == 3
  assert np.count_nonzero(second[features.CATEGORY_INDICES]) == 1
  # Queries share the title token space; no query, no keyword.
  assert len(third[features.QUERY_TOKEN_INDICES]) == features.QUERY_LENGTH
  heat = second[features.TITLE_TOKEN_INDICES][0]
  query_tokens = third[features.QUERY_TOKEN_INDICES]
  assert query_tokens[0] == heat and query_tokens[1] not in (0, heat)
  assert np.count_nonzero(query_tokens) == 2
  assert np.count_nonzero(first[features.QUERY_TOKEN_INDICES]) == 0

  # History queries: tokenized like the query, one row per history position.
  history_queries = [
      np.reshape(row[features.HISTORY_QUERY_TOKEN_INDICES],
                 [features.HISTORY_LENGTH, features.QUERY_LENGTH])
      for row in transformed]
  assert np.count_nonzero(history_queries[0]) == 0
  np.testing.assert_array_equal(history_queries[1][0], 0)
  np.testing.assert_array_equal(history_queries[1][1], query_tokens)
  np.testing.assert_array_equal(history_queries[2][0], query_tokens)
  assert np.count_nonzero(history_queries[1][2:]) == 0
  assert np.count_nonzero(history_queries[2][1:]) == 0

  # 1970-01-01 00:00 was a Thursday (day 3 with Monday = 0).
  assert (first[features.HOUR_OF_DAY], first[features.DAY_OF_WEEK]) == (0, 3)
  assert (second[features.HOUR_OF_DAY], second[features.DAY_OF_WEEK]) == (1, 4)
  assert third[features.HOUR_OF_DAY] == 5
  z = [row[features.TIMESTAMP_Z] for row in transformed]
  assert abs(np.mean(z)) < 1e-5


@pytest.mark.parametrize("split", [user_sequences.LEAVE_LAST_OUT,
                                   user_sequences.TEMPORAL])
def test_train_targets_hold_every_history_item_on_movielens(split):
  # preprocessing_fn builds the item vocabulary from the train split's targets
  # only, not from their ~30x more history tokens. That loses nothing only if
  # every history item, of train rows and of eval rows, is a train target.
  dataset = importers.import_movielens_100k(
      prerequisites.shared_data_root("movielens-100k"))
  rows = examples.build_rows(dataset, split=split)
  targets = {row[features.ITEM_ID] for row in rows.train}
  for rows_of_split in (rows.train, rows.eval):
    history_items = {item for row in rows_of_split
                     for item in row[features.HISTORY_ITEM_IDS]}
    assert history_items and history_items <= targets
