"""Tests for the retrieval Trainers' shared fit."""

import numpy as np
import pytest

from models import learning_curve
from models import training
from models import training_test
from models.retrieval import trainer
from models.retrieval import two_tower
from models.retrieval import validation as retrieval_validation


def _replayed(recalls):
  scores = iter(recalls)
  return lambda: retrieval_validation.ValidationScores(
      recall_at_50=next(scores), ndcg_at_10=0.0)


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
