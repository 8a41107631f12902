"""Tests for the CTR rankers' validation rows and scores."""

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models.ctr import validation as ctr_validation
from models import trainer_testing


def _rows(*rows):
  """Transformed rows from (user, item, history, day, label)."""
  count = len(rows)
  history = np.zeros((count, 4), np.int64)
  for row, (_, _, items, _, _) in enumerate(rows):
    history[row, :len(items)] = items
  days = np.array([row[3] for row in rows], np.float32)
  return {features.USER_INDEX: np.array([row[0] for row in rows]),
          features.ITEM_INDEX: np.array([row[1] for row in rows]),
          features.HISTORY_ITEM_INDICES: history,
          features.LABEL: np.array([row[4] for row in rows], np.float32),
          features.TIMESTAMP_Z: days,
          features.HOUR_OF_DAY: np.zeros(count, np.int64),
          features.DAY_OF_WEEK: days.astype(np.int64) % 7}


def _batches(rows, size):
  count = len(rows[features.LABEL])
  return [{name: values[start:start + size] for name, values in rows.items()}
          for start in range(0, count, size)]


def test_holds_out_each_users_newest_positive_with_its_negatives():
  # As the per-user examples expand: each user's rows together, oldest
  # positive first, each positive followed by its negatives. User 2 picked
  # 8 then 9, user 1 picked 5, 6, 7 (7 with two negatives), user 3 picked
  # one item and keeps it. Batches split users.
  rows = _rows((2, 8, [], 3.0, 1.0), (2, 1, [], 3.0, 0.0),
               (2, 9, [8], 4.0, 1.0), (2, 3, [8], 4.0, 0.0),
               (1, 5, [], 1.0, 1.0), (1, 2, [], 1.0, 0.0),
               (1, 6, [5], 2.0, 1.0), (1, 4, [5], 2.0, 0.0),
               (1, 7, [5, 6], 2.0, 1.0), (1, 3, [5, 6], 2.0, 0.0),
               (1, 2, [5, 6], 2.0, 0.0),
               (3, 4, [], 1.0, 1.0), (3, 2, [], 1.0, 0.0))
  held_out = ctr_validation.held_out_rows(_batches(rows, size=5))
  np.testing.assert_array_equal(np.flatnonzero(held_out), [2, 3, 8, 9, 10])


def test_rows_of_a_user_apart_or_a_leading_negative_are_refused():
  apart = _rows((1, 5, [], 1.0, 1.0), (1, 2, [], 1.0, 0.0),
                (2, 8, [], 1.0, 1.0), (1, 6, [5], 2.0, 1.0))
  with pytest.raises(ValueError, match="user 1's rows are not all together"):
    ctr_validation.held_out_rows(_batches(apart, size=2))
  leading_negative = _rows((1, 2, [], 1.0, 0.0), (1, 5, [], 1.0, 1.0))
  with pytest.raises(ValueError, match="starts with a negative"):
    ctr_validation.held_out_rows(_batches(leading_negative, size=2))


def test_needs_ctr_negatives():
  rows = _rows((1, 5, [], 1.0, 1.0), (1, 6, [5], 2.0, 1.0))
  with pytest.raises(ValueError, match="ctr_negatives"):
    ctr_validation.held_out_rows(_batches(rows, size=2))


def test_hold_out_reads_the_train_split_only(tmp_path):
  train, evaluation = trainer_testing.ctr_rows(
      num_users=6, positives_per_user=3, negatives=2, num_items=20, seed=0)
  fn_args = trainer_testing.fn_args({trainer_testing.TRAIN: train,
                                     trainer_testing.EVAL: evaluation},
                                    str(tmp_path))
  held_out = ctr_validation.hold_out(
      fn_args, trainer_testing.TransformOutput({}, None, {}))
  assert set(fn_args.data_accessor.read) == {trainer_testing.TRAIN}
  # One positive and its two negatives per user: the third day's.
  assert held_out.mask.sum() == 6 * 3
  np.testing.assert_array_equal(held_out.rows[features.TIMESTAMP_Z],
                                np.float32(0.2))
  assert len(held_out.positives[features.LABEL]) == 6


def test_validator_scores_auc_and_log_loss_of_the_logits():
  rows = {features.ITEM_INDEX: np.array([1, 2, 3, 4]),
          features.LABEL: np.array([1.0, 0.0, 1.0, 0.0], np.float32)}
  logits = {1: 2.0, 2: 0.0, 3: -1.0, 4: -2.0}
  validator = ctr_validation.Validator(
      rows, lambda batch: tf.gather(tf.constant([0.0, *logits.values()]),
                                    batch[features.ITEM_INDEX]))
  scores = validator()
  # Of the four (positive, negative) pairs only (3, 2) is ordered wrongly.
  assert scores.auc == pytest.approx(0.75)
  probability = 1 / (1 + np.exp(-np.array([2.0, 0.0, -1.0, -2.0])))
  assert scores.log_loss == pytest.approx(-np.mean(np.log(
      [probability[0], 1 - probability[1], probability[2],
       1 - probability[3]])))


def test_validator_needs_both_labels():
  rows = {features.LABEL: np.ones(3, np.float32)}
  with pytest.raises(ValueError, match="positive and negative"):
    ctr_validation.Validator(rows, lambda batch: batch[features.LABEL])
