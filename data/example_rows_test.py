"""Tests of a user's rows: popularity-sampled CTR negatives."""

import numpy as np

from data import example_rows


def test_sample_popular_negatives_known_draws():
  # Item "b" has all the probability mass that is not excluded: every kept
  # draw is "b", and "a" (excluded) and "c" (never drawn) never appear.
  items = np.array(["a", "b", "c"])
  probability = np.array([0.5, 0.5, 0.0])
  negatives = example_rows.sample_popular_negatives(
      np.random.default_rng(0), items, probability, {"a"}, 3)
  assert negatives == ["b", "b", "b"]


def test_sample_popular_negatives_are_seeded_and_respect_exclusions():
  items = np.arange(10)
  probability = np.full(10, 0.1)
  first, second = (example_rows.sample_popular_negatives(
      np.random.default_rng(7), items, probability, {1, 2, 3}, 20)
                   for _ in range(2))
  assert first == second and len(first) == 20
  assert not {1, 2, 3} & set(first)


def test_sample_popular_negatives_is_empty_when_every_item_is_excluded():
  assert example_rows.sample_popular_negatives(
      np.random.default_rng(0), np.array([1, 2, 3]),
      np.array([0.5, 0.5, 0.0]), {1, 2}, 4) == []
