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


# Per-user train examples and eval rows, analysed and transformed together.
EXAMPLES = [
    # u1's train example: positives a (video), b, then its own item c
    # (video), each with two CTR negatives.
    {"user_id": "u1", "item_id": "c", "timestamp": 259260, "label": 1.0,
     "item_type": "video", "query": "", "item_title": "Up",
     "item_categories": [],
     "history_item_ids": ["a", "b"], "history_queries": ["", "Heat Pacino"],
     "history_timestamps": [36000, 93600],
     "history_item_types": ["video", "item"],
     "history_item_titles": ["Toy Story", "Heat"],
     "history_item_categories": ["Animation|Comedy", "Crime"],
     "negative_item_ids": ["d", "e", "e", "d", "d", "e"],
     "negative_item_titles": ["Toy Soldiers", "Heat Wave", "Heat Wave",
                              "Toy Soldiers", "Toy Soldiers", "Heat Wave"],
     "negative_item_categories": ["Action", "Drama|Crime", "Drama|Crime",
                                  "Action", "Action", "Drama|Crime"],
     "seen_item_ids": [], "user_activity_bucket": "heavy",
     "item_popularity_bucket": "tail"},
    # u2's: b, then a (video, searched for), no negatives.
    {"user_id": "u2", "item_id": "a", "timestamp": 172800, "label": 1.0,
     "item_type": "video", "query": "toy story", "item_title": "Toy Story",
     "item_categories": ["Animation", "Comedy"],
     "history_item_ids": ["b"], "history_queries": [""],
     "history_timestamps": [18000], "history_item_types": ["item"],
     "history_item_titles": ["Heat"], "history_item_categories": ["Crime"],
     "negative_item_ids": [], "negative_item_titles": [],
     "negative_item_categories": [],
     "seen_item_ids": [], "user_activity_bucket": "medium",
     "item_popularity_bucket": "head"},
    # u3's: e alone, one negative.
    {"user_id": "u3", "item_id": "e", "timestamp": 432000, "label": 1.0,
     "item_type": "item", "query": "", "item_title": "Heat Wave",
     "item_categories": ["Drama", "Crime"],
     "history_item_ids": [], "history_queries": [], "history_timestamps": [],
     "history_item_types": [], "history_item_titles": [],
     "history_item_categories": [],
     "negative_item_ids": ["a"], "negative_item_titles": ["Toy Story"],
     "negative_item_categories": ["Animation|Comedy"],
     "seen_item_ids": [], "user_activity_bucket": "light",
     "item_popularity_bucket": "tail"},
    # An eval row: one interaction, its history ids and queries only.
    {"user_id": "u1", "item_id": "d", "timestamp": 345600, "label": 1.0,
     "item_type": "item", "query": "toy", "item_title": "Toy Soldiers",
     "item_categories": ["Action"],
     "history_item_ids": ["a", "b", "c"],
     "history_queries": ["", "Heat Pacino", ""],
     "seen_item_ids": ["a", "b", "c"], "user_activity_bucket": "heavy",
     "item_popularity_bucket": "tail"},
    # An eval row of a new user and item with one history item more than
    # HISTORY_LENGTH: the oldest, d, and its query are dropped. No positive
    # is y, nor a title or query "noir".
    {"user_id": "u9", "item_id": "zz", "timestamp": 604799, "label": 0.0,
     "item_type": "video", "query": "Pacino", "item_title": "Heat",
     "item_categories": ["Crime", "Noir"],
     "history_item_ids": ["d"] + ["a", "y"] * 25,
     "history_queries": ["toy"] + ["", "heat noir"] * 25,
     "seen_item_ids": [], "user_activity_bucket": "light",
     "item_popularity_bucket": "unseen"},
]

# The vocabularies `EXAMPLES` give: by row count, ties by value, descending.
# An item counts once per positive and once per CTR negative.
VOCABULARIES = {
    features.ITEM_VOCAB: ["e", "d", "a", "b", "zz", "c"],
    features.USER_VOCAB: ["u1", "u3", "u2", "u9"],
    features.VIDEO_VOCAB: ["e", "d", "a", "zz", "c"],
    features.TITLE_TOKEN_VOCAB: ["heat", "toy", "wave", "story", "soldiers",
                                 "pacino", "up"],
    features.CATEGORY_VOCAB: ["Crime", "Drama", "Action", "Comedy",
                              "Animation", "Noir"],
}


def _indices(vocab_name: str) -> dict[str, int]:
  """Value -> index, past the padding index, of one of `VOCABULARIES`."""
  return {value: index
          for index, value in enumerate(VOCABULARIES[vocab_name], 1)}


ITEM, USER = _indices(features.ITEM_VOCAB), _indices(features.USER_VOCAB)
TOKEN, CATEGORY = (_indices(features.TITLE_TOKEN_VOCAB),
                   _indices(features.CATEGORY_VOCAB))
OOV_ITEM, OOV_TOKEN = len(ITEM) + 1, len(TOKEN) + 1
# Each row's time, counted once per positive and once per CTR negative.
ROW_TIMESTAMPS = ([36000] * 3 + [93600] * 3 + [259260] * 3 + [18000, 172800]
                  + [432000] * 2 + [345600, 604799])


def _items(*ids):
  return [ITEM[item] for item in ids]


def _tokens(text):
  """Title token indices of `text`'s words; "noir" is out of vocabulary."""
  return [TOKEN.get(word, OOV_TOKEN) for word in text.split()]


def _z(timestamp):
  """`timestamp` scaled to z over `ROW_TIMESTAMPS`."""
  return (timestamp - np.mean(ROW_TIMESTAMPS)) / np.std(ROW_TIMESTAMPS)


def _padded(values, length):
  return list(values) + [features.PADDING_INDEX] * (length - len(values))


def _each_padded(lists, width, count=0):
  """Each of `lists` padded to `width`, then to `count` lists, flat."""
  lists = list(lists) + [[]] * (count - len(lists))
  return [value for values in lists for value in _padded(values, width)]


def _titles(*texts):
  return _each_padded([_tokens(text) for text in texts], features.TITLE_LENGTH)


def _queries(*texts):
  return _each_padded([_tokens(text) for text in texts], features.QUERY_LENGTH)


def _category_lists(*lists):
  return _each_padded([[CATEGORY[name] for name in names] for names in lists],
                      features.CATEGORY_LENGTH)


def _row(user, item, title, query, categories, timestamp, hour, day,
         label=1.0):
  """The features of the example's own interaction."""
  return {features.USER_INDEX: USER[user], features.ITEM_INDEX: ITEM[item],
          features.TITLE_TOKEN_INDICES: _titles(title),
          features.QUERY_TOKEN_INDICES: _queries(query),
          features.CATEGORY_INDICES: _category_lists(categories),
          features.HOUR_OF_DAY: hour, features.DAY_OF_WEEK: day,
          features.TIMESTAMP_Z: _z(timestamp), features.LABEL: label}


def _history(items, videos, others, queries):
  """The history's item indices, its dual-graph split (indices too) and its
  queries."""
  return {features.HISTORY_ITEM_INDICES: _padded(items,
                                                 features.HISTORY_LENGTH),
          features.HISTORY_LENGTH_FEATURE: len(items),
          features.VIDEO_NEIGHBOUR_INDICES: _padded(videos,
                                                    features.HISTORY_LENGTH),
          features.ITEM_NEIGHBOUR_INDICES: _padded(others,
                                                   features.HISTORY_LENGTH),
          features.HISTORY_QUERY_TOKEN_INDICES: _each_padded(
              [_tokens(query) for query in queries], features.QUERY_LENGTH,
              features.HISTORY_LENGTH)}


def _positives(items, is_video, titles, categories, queries, timestamps,
               hours, days):
  """The features of each positive, oldest first."""
  return {features.SEQUENCE_ITEM_INDICES: _items(*items),
          features.SEQUENCE_IS_VIDEO: is_video,
          features.SEQUENCE_TITLE_TOKEN_INDICES: _titles(*titles),
          features.SEQUENCE_CATEGORY_INDICES: _category_lists(*categories),
          features.SEQUENCE_QUERY_TOKEN_INDICES: _queries(*queries),
          features.SEQUENCE_HOUR_OF_DAY: hours,
          features.SEQUENCE_DAY_OF_WEEK: days,
          features.SEQUENCE_TIMESTAMP_Z: [_z(time) for time in timestamps]}


def _negatives(items=(), titles=(), categories=()):
  """The features of each CTR negative, positive by positive."""
  return {features.NEGATIVE_ITEM_INDICES: _items(*items),
          features.NEGATIVE_TITLE_TOKEN_INDICES: _titles(*titles),
          features.NEGATIVE_CATEGORY_INDICES: _category_lists(*categories)}


# Every transformed feature of each of `EXAMPLES`, in order.
EXPECTED = [
    {**_row("u1", "c", "up", "", [], 259260, hour=0, day=6),
     **_history(_items("a", "b"), videos=_items("a"), others=_items("b"),
                queries=["", "heat pacino"]),
     **_positives(["a", "b", "c"], [1, 0, 1], ["toy story", "heat", "up"],
                  [["Animation", "Comedy"], ["Crime"], []],
                  ["", "heat pacino", ""], [36000, 93600, 259260],
                  hours=[10, 2, 0], days=[3, 4, 6]),
     **_negatives(["d", "e", "e", "d", "d", "e"],
                  ["toy soldiers", "heat wave", "heat wave", "toy soldiers",
                   "toy soldiers", "heat wave"],
                  [["Action"], ["Drama", "Crime"], ["Drama", "Crime"],
                   ["Action"], ["Action"], ["Drama", "Crime"]])},
    {**_row("u2", "a", "toy story", "toy story", ["Animation", "Comedy"],
            172800, hour=0, day=5),
     **_history(_items("b"), videos=[], others=_items("b"), queries=[""]),
     **_positives(["b", "a"], [0, 1], ["heat", "toy story"],
                  [["Crime"], ["Animation", "Comedy"]], ["", "toy story"],
                  [18000, 172800], hours=[5, 0], days=[3, 5]),
     **_negatives()},
    # e is a video by the vocabulary: a negative of u1's videos.
    {**_row("u3", "e", "heat wave", "", ["Drama", "Crime"], 432000, hour=0,
            day=1),
     **_history([], videos=[], others=[], queries=[]),
     **_positives(["e"], [1], ["heat wave"], [["Drama", "Crime"]], [""],
                  [432000], hours=[0], days=[1]),
     **_negatives(["a"], ["toy story"], [["Animation", "Comedy"]])},
    # An eval row: its own item is its one positive. d is a video too.
    {**_row("u1", "d", "toy soldiers", "toy", ["Action"], 345600, hour=0,
            day=0),
     **_history(_items("a", "b", "c"), videos=_items("a", "c"),
                others=_items("b"), queries=["", "heat pacino", ""]),
     **_positives(["d"], [1], ["toy soldiers"], [["Action"]], ["toy"],
                  [345600], hours=[0], days=[0]),
     **_negatives()},
    {**_row("u9", "zz", "heat", "pacino", ["Crime", "Noir"], 604799,
            hour=23, day=2, label=0.0),
     **_history([ITEM["a"], OOV_ITEM] * 25, videos=_items("a") * 25,
                others=[OOV_ITEM] * 25, queries=["", "heat noir"] * 25),
     **_positives(["zz"], [1], ["heat"], [["Crime", "Noir"]], ["pacino"],
                  [604799], hours=[23], days=[2]),
     **_negatives()},
]


def test_every_output_of_examples_and_rows_is_known():
  with tempfile.TemporaryDirectory() as temp_dir:
    transformed, tft_output = transform_testing.analyze_and_transform(
        EXAMPLES, transform_testing.raw_metadata(config_lib.CURATED_SCHEMA),
        temp_dir)
    vocabularies = {
        name: [value.decode() for value in tft_output.vocabulary_by_name(name)]
        for name in VOCABULARIES}
  assert vocabularies == VOCABULARIES
  assert len(transformed) == len(EXPECTED)
  for row, (actual, expected) in enumerate(zip(transformed, EXPECTED)):
    assert set(actual) == set(expected), row
    for name, values in expected.items():
      if name in (features.TIMESTAMP_Z, features.SEQUENCE_TIMESTAMP_Z):
        # float32 in the graph, on ~1e5 s timestamps.
        np.testing.assert_allclose(actual[name], values, rtol=1e-5,
                                   atol=1e-6, err_msg=f"row {row} {name}")
      else:
        np.testing.assert_array_equal(actual[name], values,
                                      f"row {row} {name}")


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
