"""Tests for what Trainers read from their FnArgs."""

import types

import pytest
import tensorflow as tf

from models import families
from models.retrieval import two_tower
from models import train_inputs


@pytest.mark.parametrize("custom_config, seed", [
    (None, 0), ({}, 0), ({families.SEED_KEY: 7}, 7), ({families.SEED_KEY: "3"}, 3)])
def test_run_seed_reads_the_custom_config(custom_config, seed):
  fn_args = types.SimpleNamespace(custom_config=custom_config)
  assert train_inputs.run_seed(fn_args) == seed


def test_seeded_config_applies_overrides_and_seeds_tensorflow():
  fn_args = types.SimpleNamespace(custom_config={families.SEED_KEY: 3})
  config = train_inputs.seeded_config(fn_args, {"epochs": 2},
                                      two_tower.TwoTowerConfig)
  first = tf.random.uniform([4]).numpy()
  train_inputs.seeded_config(fn_args, {}, two_tower.TwoTowerConfig)
  assert config.epochs == 2
  assert (tf.random.uniform([4]).numpy() == first).all()
