"""Tests for the sampled 1 + N protocol on an export."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import serving_names
from offline_eval import export_sampled_ranking

# Item i's embedding is its score for any query: [score, 1] . [1, 0].
_ITEM_SCORES = {b"a": 5.0, b"b": 4.0, b"c": 3.0, b"d": 2.0, b"e": 1.0,
                b"f": 0.0}


class _Export(tf.Module):
  """query_embedding = [1, 0]; candidate_embedding = [item score, 1]."""

  def __init__(self):
    super().__init__()
    self.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            list(_ITEM_SCORES), list(_ITEM_SCORES.values()),
            key_dtype=tf.string, value_dtype=tf.float32), -100.0)

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string), tf.TensorSpec([None, None], tf.string),
      tf.TensorSpec([None], tf.int64)))
  def query_embedding(self, user_id, history_item_ids, timestamp):
    del history_item_ids, timestamp
    ones = tf.ones_like(user_id, tf.float32)
    return {serving_names.EMBEDDING: tf.stack([ones, 0 * ones], axis=1)}

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string),
      tf.TensorSpec([None, None], tf.string)))
  def candidate_embedding(self, item_id, item_title, item_categories):
    del item_title, item_categories
    scores = self.table.lookup(item_id)
    return {serving_names.EMBEDDING: tf.stack(
        [scores, tf.ones_like(scores)], axis=1)}


def _example(user, history, item):
  example = tf.train.Example()
  feature = example.features.feature
  feature[features.USER_ID].bytes_list.value.append(user)
  feature[features.HISTORY_ITEM_IDS].bytes_list.value.extend(history)
  feature[features.TIMESTAMP].int64_list.value.append(0)
  feature[features.ITEM_ID].bytes_list.value.append(item)
  feature[features.ITEM_TITLE].bytes_list.value.append(b"title " + item)
  feature[features.ITEM_CATEGORIES].bytes_list.value.extend([b"x", b"y"][
      :len(item)])
  return example.SerializeToString()


@pytest.fixture(name="export_dir")
def _export_dir(tmp_path):
  module = _Export()
  tf.saved_model.save(module, str(tmp_path), signatures={
      serving_names.QUERY_EMBEDDING: module.query_embedding,
      serving_names.CANDIDATE_EMBEDDING: module.candidate_embedding})
  return str(tmp_path)


def test_examples_are_read_into_padded_columns():
  examples = export_sampled_ranking.read_examples(
      [_example(b"u1", [b"a", b"b"], b"c"), _example(b"u2", [], b"d")])
  assert list(examples.user_ids) == [b"u1", b"u2"]
  assert examples.histories.tolist() == [[b"a", b"b"], [b"", b""]]
  assert list(examples.item_ids) == [b"c", b"d"]
  assert examples.categories.tolist() == [[b"x"], [b"x"]]


def test_targets_rank_against_negatives_the_user_never_had(export_dir):
  train = export_sampled_ranking.read_examples([
      _example(b"u1", [], b"b"), _example(b"u2", [b"f"], b"e")])
  # u1's target b (4) against 2 of c, d, e, f (a, b are u1's): rank 1.
  # u2's target d (2) against 2 of a, b, c (e, f, d are u2's): rank 3.
  evaluation = export_sampled_ranking.read_examples([
      _example(b"u1", [b"a"], b"b"), _example(b"u2", [b"e", b"f"], b"d")])
  metrics = export_sampled_ranking.evaluate(export_dir, train, evaluation,
                                            num_negatives=2, ks=(1, 2))
  assert metrics["hr@1"] == metrics["hr@2"] == 0.5
  assert metrics["mrr"] == pytest.approx((1 + 1 / 3) / 2)
  assert metrics["ndcg@1"] == 0.5


def test_too_few_items_left_for_the_negatives_is_refused(export_dir):
  examples = export_sampled_ranking.read_examples([
      _example(b"u1", [b"a", b"b", b"c", b"d", b"e"], b"f")])
  with pytest.raises(ValueError, match="fewer than 1 items"):
    export_sampled_ranking.evaluate(export_dir, examples, examples,
                                    num_negatives=1)


def test_a_per_user_train_example_is_read_as_one_row_per_positive():
  example = tf.train.Example.FromString(_example(b"u1", [b"a", b"b"], b"c"))
  feature = example.features.feature
  feature[features.HISTORY_TIMESTAMPS].int64_list.value.extend([1, 2])
  feature[features.HISTORY_ITEM_TITLES].bytes_list.value.extend(
      [b"title a", b"title b"])
  feature[features.HISTORY_ITEM_CATEGORIES].bytes_list.value.extend(
      [b"x|z", b""])
  examples = export_sampled_ranking.read_examples(
      [example.SerializeToString()])
  assert list(examples.user_ids) == [b"u1"] * 3
  assert list(examples.item_ids) == [b"a", b"b", b"c"]
  assert list(examples.titles) == [b"title a", b"title b", b"title c"]
  assert list(examples.timestamps) == [1, 2, 0]
  assert examples.categories.tolist() == [[b"x", b"z"], [b"", b""],
                                          [b"x", b""]]
  assert examples.histories.tolist() == [[b""]] * 3
