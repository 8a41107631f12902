"""Tests for EASE^R's closed form."""

import os

import numpy as np
import pytest
from scipy import sparse

from models.item_item import ease
from models.item_item import ease_approx
from models.item_item import gram
from models.item_item import neighbours as item_neighbours

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
  config = ease.EaseConfig(l2=2.0, neighbours=5, solver="exact")
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


def _random_interactions(users: int, items: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return (rng.random((users, items)) < 0.05).astype(np.float64)


def test_float32_exact_fit_equals_a_float64_reference():
  x = _random_interactions(300, 60, seed=0)
  b = ease.fit_ease(sparse.csr_matrix(x), ease.EaseConfig(
      l2=5.0, neighbours=60, solver="exact")).matrix().toarray()
  np.testing.assert_allclose(b, _direct_ease(x, 5.0), atol=1e-6)


def test_approximation_with_every_item_in_the_support_is_exact():
  # One user with every item: every pair co-occurs, so a support of
  # items - 1 is every other item.
  x = _random_interactions(300, 60, seed=1)
  x[0] = 1.0
  b = ease.fit_ease(sparse.csr_matrix(x), ease.EaseConfig(
      l2=5.0, neighbours=60, solver="sparse_approx",
      support=59)).matrix().toarray()
  np.testing.assert_allclose(b, _direct_ease(x, 5.0), atol=1e-6)


def test_approximation_solves_each_columns_regression_on_its_support():
  support = 2
  b = ease.fit_ease(sparse.csr_matrix(_X), ease.EaseConfig(
      l2=2.0, neighbours=5, solver="sparse_approx",
      support=support)).matrix().toarray()
  gram = _X.T @ _X
  for j in range(5):
    others = np.array([i for i in range(5) if i != j])
    # The support: the two items co-occurring most with j, ties by index.
    chosen = others[np.argsort(-gram[others, j], kind="stable")[:support]]
    expected = np.zeros(5)
    expected[chosen] = np.linalg.solve(
        gram[np.ix_(chosen, chosen)] + 2.0 * np.eye(support), gram[chosen, j])
    np.testing.assert_allclose(b[:, j], expected, atol=1e-6)


def test_an_item_without_co_occurrences_gets_no_weights():
  x = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], np.float64)
  b = ease.fit_ease(sparse.csr_matrix(x), ease.EaseConfig(
      l2=1.0, neighbours=2, solver="sparse_approx")).matrix().toarray()
  np.testing.assert_allclose(b[:, 2], 0)
  np.testing.assert_allclose(b[2], 0)
  # Column 1 regressed on item 0 alone: G[0, 1] / (G[0, 0] + λ).
  np.testing.assert_allclose(b[0, 1], 1 / (2 + 1))


def test_auto_is_exact_within_the_budget_and_approximate_above_it():
  x = _random_interactions(300, 60, seed=2)
  exact = _direct_ease(x, 5.0)
  gram_nonzeros = sparse.csr_matrix(x.T @ x).nnz
  needed = ease.exact_memory_bytes(60, gram_nonzeros)
  assert needed < ease.approx_memory_bytes(gram_nonzeros, 60, 60 * 8,
                                          60) + needed

  def fit(budget_bytes):
    return ease.fit_ease(sparse.csr_matrix(x), ease.EaseConfig(
        l2=5.0, neighbours=60, support=8,
        memory_budget_gb=budget_bytes / 1e9)).matrix().toarray()

  np.testing.assert_allclose(fit(needed), exact, atol=1e-6)
  approximate = fit(needed - 1)
  assert np.abs(approximate - exact).max() > 1e-2
  assert np.all((approximate != 0).sum(axis=0) <= 8)


def test_a_forced_solver_above_the_budget_names_what_to_change():
  with pytest.raises(ValueError, match=r"5 x 5 .*memory_budget_gb=0.0.*"
                     r"solver='auto'"):
    ease.fit_ease(sparse.csr_matrix(_X), ease.EaseConfig(
        l2=2.0, solver="exact", memory_budget_gb=1e-6))
  with pytest.raises(ValueError, match=r"support=128 .*lower support"):
    ease.fit_ease(sparse.csr_matrix(_X), ease.EaseConfig(
        l2=2.0, solver="sparse_approx", memory_budget_gb=1e-6))
  with pytest.raises(ValueError, match=r"solver='cholesky'"):
    ease.fit_ease(sparse.csr_matrix(_X), ease.EaseConfig(
        l2=2.0, solver="cholesky"))


def test_the_approximation_by_blocks_equals_the_one_block_fit(monkeypatch):
  x = sparse.csr_matrix(_random_interactions(120, 40, seed=5))
  config = ease.EaseConfig(l2=3.0, solver="sparse_approx", support=6,
                           neighbours=10)
  whole = list(ease.fit_ease_path(x, config, [3.0, 30.0]))
  monkeypatch.setattr(gram, "ENTRIES_PER_BLOCK", 9)
  monkeypatch.setattr(item_neighbours, "RANKED_ENTRIES_PER_BLOCK", 13)
  blocked = list(ease.fit_ease_path(x, config, [3.0, 30.0]))
  for one, other in zip(whole, blocked):
    np.testing.assert_array_equal(one.indices, other.indices)
    np.testing.assert_allclose(one.weights, other.weights, rtol=1e-6)


def test_the_approximation_on_threads_equals_the_one_thread_fit(monkeypatch):
  x = sparse.csr_matrix(_random_interactions(200, 60, seed=6))
  # Blocks of two 6 x 6 systems: many batches for the threads to share.
  monkeypatch.setattr(ease_approx, "SOLVE_BLOCK_CELLS", 2 * 6 * 6)
  fits = {threads: list(ease.fit_ease_path(x, ease.EaseConfig(
      solver="sparse_approx", support=6, neighbours=10,
      solve_threads=threads), [3.0, 30.0])) for threads in (1, 3)}
  for one, other in zip(fits[1], fits[3]):
    np.testing.assert_array_equal(one.indices, other.indices)
    np.testing.assert_array_equal(one.weights, other.weights)
  assert np.any(fits[1][0].weights != 0)


def test_solve_threads_default_to_the_cpus_of_the_process(monkeypatch):
  assert ease.solve_threads(ease.EaseConfig()) == len(os.sched_getaffinity(0))
  monkeypatch.delattr(os, "sched_getaffinity")  # As on macOS.
  monkeypatch.setattr(os, "cpu_count", lambda: 6)
  assert ease.solve_threads(ease.EaseConfig()) == 6
  assert ease.solve_threads(ease.EaseConfig(solve_threads=3)) == 3
  with pytest.raises(ValueError, match="solve_threads=0"):
    ease.solve_threads(ease.EaseConfig(solve_threads=0))
  one, two = (ease.approx_memory_bytes(10**6, 1000, 10**5, 10, threads=n)
              for n in (1, 2))
  assert two > one


def test_the_default_budget_is_half_the_memory_available(monkeypatch):
  assert gram.available_memory_bytes() > 0
  monkeypatch.setattr(gram, "available_memory_bytes", lambda: 10_000)
  assert ease.memory_budget_bytes(ease.EaseConfig()) == 5_000
  assert ease.memory_budget_bytes(
      ease.EaseConfig(memory_budget_gb=2.5)) == 2_500_000_000
  assert ease.exact_memory_bytes(20_000, 0) == (
      4 * 20_000 ** 2 + item_neighbours.BLOCK_PEAK_BYTES)


@pytest.mark.parametrize("solver", ["exact", "sparse_approx"])
def test_a_path_of_l2_values_fits_what_each_fit_alone_gives(solver):
  x = sparse.csr_matrix(_random_interactions(200, 40, seed=4))
  config = ease.EaseConfig(solver=solver, support=6, neighbours=10)
  path = list(ease.fit_ease_path(x, config, [3.0, 30.0, 300.0]))
  assert len(path) == 3
  for l2, fitted in zip([3.0, 30.0, 300.0], path):
    alone = ease.fit_ease(x, ease.EaseConfig(l2=l2, solver=solver, support=6,
                                             neighbours=10))
    np.testing.assert_allclose(fitted.matrix().toarray(),
                               alone.matrix().toarray(), rtol=1e-5,
                               atol=1e-7)
  assert not np.allclose(path[0].weights, path[2].weights)


def test_fit_each_takes_configs_that_differ_in_l2_alone():
  x = sparse.csr_matrix(_X)
  configs = [ease.EaseConfig(l2=l2, neighbours=3) for l2 in (1.0, 2.0)]
  (first, second) = ease.fit_ease_each(x, configs)
  np.testing.assert_allclose(
      second.matrix().toarray(),
      ease.fit_ease(x, configs[1]).matrix().toarray(), atol=1e-6)
  with pytest.raises(ValueError, match="l2 alone"):
    ease.fit_ease_each(x, [configs[0],
                           ease.EaseConfig(l2=2.0, neighbours=4)])


def test_a_fit_over_the_budget_is_refused_before_the_gram_matrix_is_built(
    monkeypatch):
  monkeypatch.setattr(gram, "build", lambda _: pytest.fail("G was built"))
  # 1e-12 GB is 1 byte: neither solver fits.
  with pytest.raises(ValueError, match="approximate EASE.*co-occurrence "
                     "matrix of 25 non-zeros.*memory_budget_gb"):
    ease.fit_ease(sparse.csr_matrix(_X), ease.EaseConfig(
        l2=10.0, memory_budget_gb=1e-12))
