"""Tests for what the GMN benchmark's rows share: the coordinate search."""

import dataclasses

from benchmarks import gmn_setup


@dataclasses.dataclass(frozen=True)
class _Config:
  learning_rate: float = 0.5
  layers: int = 9
  width: int = 1


def _validation(config: _Config) -> float:
  """Best at learning rate 0.01 with 2 layers; width never matters."""
  return (-abs(config.learning_rate - 0.01) * 10
          - abs(config.layers - 2) + 0.001 * config.width)


def test_each_field_is_tuned_with_the_others_at_their_best_so_far():
  tried = []

  def run(config):
    tried.append(config)
    return {"all": {}}, {"validation": _validation(config)}

  chosen, (_, timing), searched = gmn_setup.coordinate_search(
      _Config(), {"learning_rate": [0.003, 0.01, 0.03], "layers": [1, 2, 3]},
      run, "toy")
  assert chosen == _Config(learning_rate=0.01, layers=2)
  assert timing["validation"] == _validation(chosen)
  # The first values are the start; each later value is one fit.
  assert [(config.learning_rate, config.layers) for config in tried] == [
      (0.003, 1), (0.01, 1), (0.03, 1), (0.01, 2), (0.01, 3)]
  assert [entry["hparams"] for entry in searched] == [
      {"learning_rate": 0.003, "layers": 1}, {"learning_rate": 0.01, "layers": 1},
      {"learning_rate": 0.03, "layers": 1}, {"learning_rate": 0.01, "layers": 2},
      {"learning_rate": 0.01, "layers": 3}]
  assert all("validation" in entry for entry in searched)


def test_a_tie_keeps_the_earlier_setting():
  chosen, _, searched = gmn_setup.coordinate_search(
      _Config(), {"width": [1, 2]},
      lambda config: ({}, {"validation": 0.0}), "toy")
  assert chosen.width == 1 and len(searched) == 2
