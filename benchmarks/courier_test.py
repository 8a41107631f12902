"""Tests for the COURIER benchmark's click examples."""

import numpy as np

from benchmarks import courier
from data import features


class _Dataset:
  """Two users over items 1..8; each item's train count is its index."""
  num_items = 9
  train_sequences = [np.array([1, 2, 3]), np.array([4, 5])]
  valid_items = np.array([6, 7])
  test_items = np.array([7, 8])

  def interacted(self, user: int) -> np.ndarray:
    return np.concatenate([self.train_sequences[user],
                           [self.valid_items[user], self.test_items[user]]])

  def train_counts(self) -> np.ndarray:
    return np.arange(self.num_items)


def test_validation_examples_are_the_validation_items_after_the_train_history():
  dataset = _Dataset()
  train, valid, test, _ = courier.build_ctr_examples(
      dataset, history_length=4, negatives=2, seed=0, max_positives=5,
      max_pretrain_positives=5)
  positive = valid.labels == 1
  np.testing.assert_array_equal(valid.users[positive], [0, 1])
  np.testing.assert_array_equal(valid.items[positive], dataset.valid_items)
  np.testing.assert_array_equal(valid.histories[positive],
                                [[1, 2, 3, 0], [4, 5, 0, 0]])
  assert len(valid.labels) == 2 * 3
  for user in (0, 1):
    negatives = valid.items[(valid.users == user) & ~positive]
    assert not set(negatives) & set(dataset.interacted(user))
  # Train positives come from the train sequences only.
  rows = train.labels == 1
  assert all(item in dataset.train_sequences[user]
             for user, item in zip(train.users[rows], train.items[rows]))
  np.testing.assert_array_equal(test.items[test.labels == 1],
                                dataset.test_items)
  assert set(valid.as_inputs()) == {features.USER_INDEX, features.ITEM_INDEX,
                                    features.HISTORY_ITEM_INDICES,
                                    features.LABEL}
