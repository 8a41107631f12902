"""Tests for EASE^R's closed form."""

import numpy as np
import pytest
from scipy import sparse

from models import ease

_X = np.array([[1, 1, 0, 0, 1],
               [0, 1, 1, 0, 0],
               [1, 0, 1, 1, 0],
               [0, 1, 1, 1, 1],
               [1, 1, 0, 0, 0]], np.float64)


def _direct_ease(x: np.ndarray, l2: float) -> np.ndarray:
  """B = I - P / diag(P), P = (XᵀX + λI)⁻¹, straight from Steck (2019)."""
  p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
  b = np.eye(x.shape[1]) - p / np.diag(p)
  np.fill_diagonal(b, 0.0)
  return b


def test_all_neighbours_give_the_exact_closed_form():
  config = ease.EaseConfig(l2=2.0, neighbours=5)
  neighbours = ease.fit_ease(sparse.csr_matrix(_X), config)
  np.testing.assert_allclose(neighbours.matrix().toarray(),
                             _direct_ease(_X, 2.0), atol=1e-6)


def test_the_fit_has_a_zero_diagonal_and_solves_the_ridge_normal_equations():
  b = ease.fit_ease(sparse.csr_matrix(_X),
                    ease.EaseConfig(l2=2.0, neighbours=5)).matrix().toarray()
  assert np.all(np.diag(b) == 0)
  # Least squares under diag(B) = 0: (G + λI) B - G is diagonal (the
  # constraint's Lagrange multipliers).
  gram = _X.T @ _X
  residual = (gram + 2.0 * np.eye(5)) @ b - gram
  np.testing.assert_allclose(residual - np.diag(np.diag(residual)), 0,
                             atol=1e-5)


def test_top_k_keeps_each_rows_largest_weights():
  neighbours = ease.fit_ease(sparse.csr_matrix(_X),
                             ease.EaseConfig(l2=2.0, neighbours=2))
  exact = _direct_ease(_X, 2.0)
  np.fill_diagonal(exact, -np.inf)
  expected = np.sort(exact, axis=1)[:, ::-1][:, :2]
  np.testing.assert_allclose(neighbours.weights, expected, rtol=1e-5)
  np.testing.assert_allclose(
      np.take_along_axis(exact, neighbours.indices, axis=1), expected)


def test_a_catalogue_above_max_items_is_refused_with_what_it_needs():
  config = ease.EaseConfig(max_items=4)
  with pytest.raises(ValueError, match=r"5 x 5 .*max_items=4.*item_knn"):
    ease.fit_ease(sparse.csr_matrix(_X), config)
  assert ease.dense_memory_bytes(20_000) == 2 * 20_000 ** 2 * 8
