"""Tests of the global passes over counts."""

import collections

import numpy as np
import pytest

from data import global_passes


@pytest.mark.parametrize("seed", range(20))
def test_quantiles_from_counts_equal_numpy_on_the_values(seed):
  rng = np.random.default_rng(seed)
  values = rng.integers(0, rng.integers(1, 50), size=rng.integers(1, 300))
  counts = collections.Counter(values.tolist())
  for quantile in (1 / 3, 2 / 3, 0.05, 0.5, 0.9, 0.999):
    assert global_passes.quantile_from_counts(counts, quantile) == np.quantile(
        values, quantile)
    assert global_passes.temporal_cut_from_counts(
        counts, quantile) == np.quantile(values, quantile, method="higher")


def test_temporal_cut_needs_a_quantile_strictly_inside_0_1():
  for quantile in (0.0, 1.0):
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
      global_passes.temporal_cut(np.array([1, 2]), quantile)
