"""Tests for the item-item families' train functions."""

import dataclasses
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from data import features
from data import splits
from models.item_item import ease
from models.item_item import fitters
from models.item_item import trainer as item_item_trainer
from models.item_item import tuning as item_item_tuning


def _fn_args(batches):
  """FnArgs whose data accessor serves `batches` whatever it is asked."""
  def tf_dataset_factory(file_pattern, options, schema):
    del file_pattern, options, schema
    return tf.data.Dataset.from_tensor_slices(batches)
  return types.SimpleNamespace(
      train_files=["unused"], custom_config={},
      data_accessor=types.SimpleNamespace(
          tf_dataset_factory=tf_dataset_factory))


def test_train_rows_keep_positives_with_their_history_and_time():
  batches = {
      features.USER_INDEX: np.array([[1, 1, 2], [3, 1, 1]]),
      features.ITEM_INDEX: np.array([[2, 3, 2], [1, 2, 4]]),
      features.HISTORY_ITEM_INDICES: np.array([[[0, 0], [2, 0], [0, 0]],
                                               [[0, 0], [2, 3], [2, 2]]]),
      features.TIMESTAMP_Z: np.array([[-1.0, 0.0, -0.5], [0.1, 0.5, 0.9]],
                                     np.float32),
      features.LABEL: np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
  }
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))
  rows = item_item_trainer.train_rows(_fn_args(batches), tft_output)
  # (1, 3) and (1, 4) are negatives.
  np.testing.assert_array_equal(rows.users, [1, 2, 3, 1])
  np.testing.assert_array_equal(rows.items, [2, 2, 1, 2])
  np.testing.assert_allclose(rows.timestamps, [-1.0, -0.5, 0.1, 0.5])
  # Each user's newest positive's history, user 0 (no row) padding.
  np.testing.assert_array_equal(rows.latest_histories,
                                [[0, 0], [2, 3], [0, 0], [0, 0]])
  # User 1's repeated (1, 2) counts once.
  np.testing.assert_array_equal(rows.interactions(5).toarray(),
                                [[0, 0, 0, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 0, 1, 0, 0],
                                 [0, 1, 0, 0, 0]])


def test_latest_histories_are_those_of_the_rows_validation_holds_out():
  # Many batches of users with ties in time: the history kept per user is
  # that of the row `latest_per_user_mask` marks.
  rng = np.random.default_rng(0)
  size, batch = 600, 64
  users = rng.integers(0, 40, size)
  times = rng.integers(0, 5, size).astype(np.float32)
  histories = np.stack([np.arange(size), np.arange(size) + 1], axis=1)
  padded = -(-size // batch) * batch

  def pad(values, fill):
    # The last batch is filled up with negatives, which are dropped.
    return np.concatenate([values, np.full((padded - size,) + values.shape[1:],
                                           fill, values.dtype)])

  label = pad(np.ones(size, np.float32), 0.0)
  batches = {
      features.USER_INDEX: pad(users, 0).reshape(-1, batch),
      features.ITEM_INDEX: pad(np.ones(size, np.int64), 1).reshape(-1, batch),
      features.HISTORY_ITEM_INDICES: pad(histories, 0).reshape(-1, batch, 2),
      features.TIMESTAMP_Z: pad(times, 0.0).reshape(-1, batch),
      features.LABEL: label.reshape(-1, batch)}
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))
  rows = item_item_trainer.train_rows(_fn_args(batches), tft_output)
  validation = splits.latest_per_user_mask(rows.users, rows.timestamps,
                                           min_rows=1)
  np.testing.assert_array_equal(
      rows.latest_histories[rows.users[validation]], histories[validation])


def test_a_refit_is_skipped_only_when_the_time_left_cannot_hold_it():
  assert item_item_trainer.refit_or_reason(100.0, None, 0.0) is None
  # 1.5x the search's first fit: 150 s needed.
  assert item_item_trainer.refit_or_reason(100.0, 1150.0, 1000.0) is None
  reason = item_item_trainer.refit_or_reason(100.0, 1149.0, 1000.0)
  assert reason.startswith("the search's fit, on every train row but each "
                           "user's newest")
  assert "needs about 150 s" in reason and "149 s" in reason
  assert "baselines.fit_timeout_s" in reason


def _ease_rows(num_users=40, num_items=12, seed=0):
  """Each user's items in time order; the newest row is validation's."""
  rng = np.random.default_rng(seed)
  users, items, times = [], [], []
  for user in range(num_users):
    chosen = rng.choice(np.arange(1, num_items), size=4, replace=False)
    users += [user] * 4
    items += list(chosen)
    times += [0.0, 1.0, 2.0, 3.0]
  histories = np.zeros((num_users, 3), np.int64)
  for user in range(num_users):
    histories[user] = items[4 * user:4 * user + 3]
  return item_item_tuning.TrainRows(
      users=np.array(users), items=np.array(items), timestamps=np.array(times),
      latest_histories=histories), num_items


@pytest.mark.parametrize("deadline_in_s, fitted_rows", [
    (None, "every"), (3600.0, "every"), (-1.0, "search")])
def test_the_search_fit_is_kept_only_when_the_deadline_is_near(
    deadline_in_s, fitted_rows):
  rows, num_items = _ease_rows()
  fitter = fitters.FITTERS["ease"]
  config = ease.EaseConfig(l2_grid=(1.0, 30.0), neighbours=5)
  deadline = None if deadline_in_s is None else time.time() + deadline_in_s
  choice = item_item_trainer.search_and_choose(
      fitter, config, rows, np.arange(num_items) > 0, "ease", deadline)
  curve = choice.curve
  chosen = ease.EaseConfig(l2=curve.chosen["l2"], neighbours=5)
  assert choice.config == dataclasses.replace(config, l2=chosen.l2)
  assert (choice.search_fit is None) == (fitted_rows == "every")
  neighbours = choice.search_fit
  if neighbours is None:
    neighbours = item_item_trainer.fit_every_row(
        fitter, choice.config, rows, num_items)
  held_out = splits.latest_per_user_mask(rows.users, rows.timestamps)
  keep = None if fitted_rows == "every" else ~held_out
  expected = fitter.fit(rows.interactions(num_items, keep=keep), chosen)
  np.testing.assert_allclose(neighbours.matrix().toarray(),
                             expected.matrix().toarray(), rtol=1e-5)
  other = fitter.fit(rows.interactions(
      num_items, keep=~held_out if fitted_rows == "every" else None), chosen)
  # The two fits differ, so the comparison above tells them apart.
  assert not np.allclose(neighbours.matrix().toarray(),
                         other.matrix().toarray(), rtol=1e-5)
  if fitted_rows == "every":
    assert curve.chosen["fitted_on"] == item_item_trainer.FITTED_ON_EVERY_ROW
  else:
    assert curve.chosen["fitted_on"].startswith("the search's fit")


def test_the_search_curve_is_written_before_the_refit(monkeypatch):
  # A refit stopped at the fit budget must still leave the search's record.
  rows, num_items = _ease_rows()
  monkeypatch.setattr(
      item_item_trainer.catalogue_lib, "train_split_catalogue",
      lambda fn_args, tft_output: types.SimpleNamespace(
          item_ids=np.arange(num_items),
          train_counts=(np.arange(num_items) > 0).astype(int)))
  monkeypatch.setattr(item_item_trainer, "train_rows",
                      lambda fn_args, tft_output: rows)
  written = []
  monkeypatch.setattr(item_item_trainer.learning_curve, "write",
                      lambda directory, curve: written.append(curve))

  class Stopped(Exception):
    pass

  def stopped_refit(*args):
    del args
    assert len(written) == 1
    raise Stopped()

  monkeypatch.setattr(item_item_trainer, "fit_every_row", stopped_refit)
  fn_args = types.SimpleNamespace(custom_config={}, model_run_dir="run")
  with pytest.raises(Stopped):
    item_item_trainer.train(fn_args, None,
                            {"l2_grid": [1.0, 30.0], "neighbours": 5},
                            types.SimpleNamespace(name="ease", export=None))
  curve, = written
  assert [point.step for point in curve.points] == [1.0, 30.0]
  assert curve.chosen["fitted_on"] == item_item_trainer.FITTED_ON_EVERY_ROW
  # Each setting's seconds since the search's fits began, in order.
  seconds = [point.seconds for point in curve.points]
  assert 0 <= seconds[0] <= seconds[1]
