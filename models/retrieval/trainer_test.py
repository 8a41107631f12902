"""Tests for the retrieval Trainers' shared fit."""

import types

import numpy as np
import pytest

from data import features
from data import splits
from models import catalogue as catalogue_lib
from models import learning_curve
from models import training
from models import trainer_testing
from models import training_test
from models import validation_scores
from models.retrieval import trainer
from models.retrieval import two_tower


def _replayed(recalls):
  scores = iter(recalls)
  return lambda: validation_scores.ValidationScores(
      recall_at_10=0.0, recall_at_50=next(scores), ndcg_at_10=0.0)


def _rates(tmp_path, **overrides):
  config = two_tower.TwoTowerConfig(learning_rate=0.1, epochs=6,
                                    early_stopping_patience=3, **overrides)
  trainer.fit(training_test.MeanSquaredModel(),
              training.shuffled_batches({"x": np.ones(8, np.float32)}, 4,
                                        seed=0),
              _replayed([0.2, 0.4, 0.3, 0.35, 0.38, 0.9]), config,
              "two_tower", str(tmp_path), num_items=10)
  return [point.learning_rate
          for point in learning_curve.read(str(tmp_path)).points]


def test_the_config_s_plateau_decay_lowers_the_rate(tmp_path):
  # Epochs 3-5 renew nothing: the rate halves after epochs 3 and 4.
  assert _rates(tmp_path, plateau_decay_factor=0.5,
                plateau_decay_after=1) == pytest.approx(
                    [0.1, 0.1, 0.1, 0.05, 0.025])


def test_without_a_plateau_decay_factor_the_rate_stays(tmp_path):
  assert _rates(tmp_path) == pytest.approx([0.1] * 5)


def two_rows_per_user(users: np.ndarray, newest_items: np.ndarray,
                      model_dir: str):
  """`(fn_args, tft_output)` of a train split where each user of `users`
  has item 1, then their item of `newest_items` (the held-out row)."""
  count = 2 * len(users)
  train = {
      features.USER_INDEX: np.repeat(users, 2),
      features.ITEM_INDEX: np.stack([np.ones_like(newest_items),
                                     newest_items], axis=1).ravel(),
      features.HISTORY_ITEM_INDICES: np.tile([[0, 0], [1, 0]], (len(users), 1)),
      features.HOUR_OF_DAY: np.zeros(count, np.int64),
      features.DAY_OF_WEEK: np.zeros(count, np.int64),
      features.TIMESTAMP_Z: np.tile([0.0, 1.0], len(users)).astype(np.float32)}
  fn_args = trainer_testing.fn_args({trainer_testing.TRAIN: train}, model_dir)
  return fn_args, types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None))


def test_validation_holds_out_every_user_and_scores_the_capped_sample(
    monkeypatch, tmp_path):
  fn_args, tft_output = two_rows_per_user(np.arange(6), np.full(6, 2),
                                          str(tmp_path))
  towers = types.SimpleNamespace(query_tower=None, candidate_tower=None)
  catalogue = catalogue_lib.ItemCatalogue(
      item_ids=np.array(["", "a", "b"], dtype=object),
      candidate_features={features.ITEM_INDEX: np.arange(3)},
      train_counts=np.array([0.0, 6.0, 6.0]))
  monkeypatch.setattr(splits, "VALIDATION_MAX_USERS", 4)
  _, held_out, validator = trainer.validation_split(fn_args, tft_output,
                                                    towers, catalogue)
  np.testing.assert_array_equal(held_out, np.tile([False, True], 6))
  assert len(validator.lengths) == 4
  assert set(validator.rows[features.ITEM_INDEX].ravel()) == {2}
