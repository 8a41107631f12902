"""Tests for the validation of pre-training objectives."""

import numpy as np
import pytest
import tensorflow as tf

from models import loss_validation


def test_validator_means_the_loss_over_fixed_batches_with_current_weights():
  weight = tf.Variable(1.0)
  batches = tf.data.Dataset.from_tensor_slices(
      {"x": np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)}).batch(2)
  validator = loss_validation.Validator(
      lambda batch: weight * tf.reduce_mean(batch["x"]), batches)
  # Batch means 1.5, 3.5 and 5.
  assert validator().loss == pytest.approx(10.0 / 3)
  weight.assign(2.0)
  assert validator().loss == pytest.approx(20.0 / 3)
