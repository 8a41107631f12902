"""Tests of building hyperparameters from override dicts."""

import dataclasses

import pytest

from models import hparams


@dataclasses.dataclass(frozen=True)
class _Config(hparams.HParams):
  units: tuple = (8, 4)
  rate: float = 0.1


def test_overrides_defaults_and_makes_lists_tuples():
  config = _Config.from_dict({"units": [16, 2]})
  assert config == _Config(units=(16, 2), rate=0.1)
  assert _Config.from_dict({}) == _Config()


def test_unknown_names_are_rejected_with_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown _Config hyperparameters \['epoch'\]; "
                     r"known: \['rate', 'units'\]"):
    _Config.from_dict({"epoch": 3})
