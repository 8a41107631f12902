"""Tests for the retrieval families' in-memory inputs."""

import numpy as np
import pytest

from data import features
from data import synthetic
from offline_eval import datasets
from offline_eval import retrieval_inputs


@pytest.fixture(scope="module")
def dataset():
  return datasets.from_contract(synthetic.generate(n_users=20, n_items=30),
                                "synthetic")


def test_query_features_shift_users_past_padding_and_zero_the_time():
  queries = retrieval_inputs.query_features(np.array([0, 4]),
                                            np.array([[3, 0], [5, 6]]))
  np.testing.assert_array_equal(queries[features.USER_INDEX], [1, 5])
  np.testing.assert_array_equal(queries[features.HISTORY_ITEM_INDICES],
                                [[3, 0], [5, 6]])
  for name in (features.HOUR_OF_DAY, features.DAY_OF_WEEK,
               features.TIMESTAMP_Z):
    np.testing.assert_array_equal(queries[name], [0, 0])


def test_examples_pair_each_train_history_with_its_target_features(dataset):
  inputs = retrieval_inputs.RetrievalInputs.from_dataset(dataset, 3)
  examples = inputs.examples
  assert len(examples[features.ITEM_INDEX]) == sum(
      len(sequence) for sequence in dataset.train_sequences)
  first = dataset.train_sequences[0]
  np.testing.assert_array_equal(examples[features.ITEM_INDEX][:2], first[:2])
  np.testing.assert_array_equal(
      examples[features.HISTORY_ITEM_INDICES][1], [first[0], 0, 0])
  np.testing.assert_array_equal(
      examples[features.TITLE_TOKEN_INDICES][1], dataset.item_tokens[first[1]])
  assert inputs.vocab.users == dataset.num_users + 2
  assert inputs.vocab.items == len(inputs.catalogue[features.ITEM_INDEX])


def test_user_queries_include_the_validation_item_on_request(dataset):
  with_valid = retrieval_inputs.user_queries(dataset, 50, include_valid=True)
  without = retrieval_inputs.user_queries(dataset, 50, include_valid=False)
  user = 3
  length = len(dataset.train_sequences[user])
  assert (with_valid[features.HISTORY_ITEM_INDICES][user, length]
          == dataset.valid_items[user])
  assert without[features.HISTORY_ITEM_INDICES][user, length] == 0


def test_histories_carry_their_event_types(dataset):
  inputs = retrieval_inputs.RetrievalInputs.from_dataset(dataset, 3)
  assert inputs.num_event_types == len(dataset.event_names)
  np.testing.assert_array_equal(
      inputs.examples[features.HISTORY_EVENT_INDICES],
      dataset.next_item_event_histories(3))
  queries = retrieval_inputs.user_queries(dataset, 50, include_valid=True)
  np.testing.assert_array_equal(queries[features.HISTORY_EVENT_INDICES],
                                dataset.padded_event_history(50, True))
