"""Tests for what Trainers read from their FnArgs."""

import types

import pytest

from models import families
from models import train_inputs


@pytest.mark.parametrize("custom_config, seed", [
    (None, 0), ({}, 0), ({families.SEED_KEY: 7}, 7), ({families.SEED_KEY: "3"}, 3)])
def test_run_seed_reads_the_custom_config(custom_config, seed):
  fn_args = types.SimpleNamespace(custom_config=custom_config)
  assert train_inputs.run_seed(fn_args) == seed
