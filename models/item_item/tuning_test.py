"""Tests for the item-item hyperparameter search on validation rows."""

import dataclasses
import gc
import weakref
from typing import Optional

import numpy as np
import pytest
from scipy import sparse

from data import splits
from models.item_item import neighbours as item_neighbours
from models.item_item import tuning as item_item_tuning

# Items 1..4 (0 is padding); item 4 has no train positive (not servable).
_SERVABLE = np.array([False, True, True, True, False])


def _neighbours(b: np.ndarray) -> item_neighbours.ItemNeighbours:
  """ItemNeighbours keeping every entry of the dense `b`."""
  order = np.argsort(-b, axis=1, kind="stable")
  return item_neighbours.ItemNeighbours(
      order.astype(np.int64),
      np.take_along_axis(b, order, axis=1).astype(np.float32))


def _recall(neighbours, histories, seen, targets, servable, k):
  return float(np.mean(item_item_tuning.validation_ranks(
      neighbours, histories, seen, targets, servable) < k))


def _no_seen(n):
  return sparse.csr_matrix((n, 5))


def test_validation_recall_follows_the_evaluate_protocol():
  b = np.zeros((5, 5))
  b[1, 2], b[1, 3], b[1, 4] = 0.9, 0.5, 5.0  # 4 is not servable
  b[2, 3] = 0.7
  b[3, 1] = 0.8
  histories = np.array([[1, 0], [1, 3], [2, 0]])
  targets = np.array([2, 1, 1])
  # Query 1 ranks 2 first (3 second, 4 never ranked). Query 2 chose its
  # history item 1 again, still ranked: 0.8, behind item 2's 0.9. Query 3
  # ranks 1 (0) behind 3 (0.7), unless the user's seen item 3 is excluded.
  seen = sparse.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 1, 0, 1, 0],
                                     [0, 0, 1, 1, 0]]))
  recall = _recall(_neighbours(b), histories,
                                              seen, targets, _SERVABLE, k=1)
  assert recall == pytest.approx(2 / 3)
  without_seen = _recall(
      _neighbours(b), histories, _no_seen(3), targets, _SERVABLE, k=1)
  assert without_seen == pytest.approx(1 / 3)


def test_blocks_of_one_query_give_the_same_recall(monkeypatch):
  b = np.zeros((5, 5))
  b[1, 2], b[1, 3], b[2, 3], b[3, 1] = 0.9, 0.5, 0.7, 0.8
  histories = np.array([[1, 0], [1, 3], [2, 0], [3, 0]])
  targets = np.array([2, 1, 1, 2])
  seen = sparse.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 1, 0, 1, 0],
                                     [0, 0, 1, 1, 0], [0, 1, 0, 1, 0]]))
  whole = _recall(_neighbours(b), histories, seen,
                                             targets, _SERVABLE, k=1)
  monkeypatch.setattr(item_item_tuning, "_QUERY_BLOCK", 1)
  blocked = _recall(_neighbours(b), histories, seen,
                                               targets, _SERVABLE, k=1)
  assert blocked == whole == pytest.approx(3 / 4)


def _dense_recall(b, histories, seen, targets, servable, k):
  """The protocol on dense `[queries, items]` scores, as a reference."""
  counts = np.zeros((len(targets), b.shape[0]))
  for query, history in enumerate(histories):
    for item in history[history != 0]:
      counts[query, item] += 1
  scores = counts @ b
  hits = 0
  for query, target in enumerate(targets):
    competitors = servable.copy()
    competitors[history_items := histories[query]] = False
    competitors[seen[query].nonzero()[1]] = False
    competitors[target] = False
    ahead = np.sum(competitors & (scores[query] >= scores[query, target]))
    hits += servable[target] and ahead < k
  del history_items
  return hits / len(targets)


@pytest.mark.parametrize("seed", range(6))
def test_sparse_scoring_ranks_as_dense_scores_do(seed):
  rng = np.random.default_rng(seed)
  items, queries = 30, 40
  # Negative and zero weights, repeated history items, unservable items;
  # whole numbers, so that sums are exact and ties are many.
  b = np.where(rng.random((items, items)) < 0.2,
               rng.integers(-3, 4, (items, items)), 0).astype(np.float64)
  np.fill_diagonal(b, 0.0)
  servable = rng.random(items) < 0.8
  servable[0] = False
  histories = rng.integers(0, items, (queries, 6))
  targets = rng.integers(1, items, queries)
  seen = sparse.csr_matrix((rng.random((queries, items)) < 0.1).astype(float))
  for k in (1, 3, 10):
    assert _recall(
        _neighbours(b), histories, seen, targets, servable, k=k) == (
            pytest.approx(_dense_recall(b, histories, seen, targets, servable,
                                        k)))


def test_a_target_that_is_not_servable_is_never_ranked():
  # Item 4 is not servable: no cut-off reaches it, even one past the
  # catalogue's size.
  ranks = item_item_tuning.validation_ranks(
      _neighbours(np.ones((5, 5))), np.array([[1]]), _no_seen(1),
      np.array([4]), _SERVABLE)
  assert ranks.tolist() == [item_item_tuning.UNRANKED]
  assert _recall(_neighbours(np.ones((5, 5))), np.array([[1]]), _no_seen(1),
                 np.array([4]), _SERVABLE, k=100) == 0.0


def test_ties_count_against_the_target():
  histories = np.array([[1]])
  # Items 2 and 3 both score 0: 2 ranks behind 3.
  recall = _recall(
      _neighbours(np.zeros((5, 5))), histories, _no_seen(1), np.array([2]),
      _SERVABLE, k=1)
  assert recall == 0.0


@dataclasses.dataclass(frozen=True)
class _Config:
  weight: Optional[float] = None
  other: Optional[int] = None


def _rows():
  # Users 0 and 1, each: item 1 at t=0, then item 2 at t=1 (validation).
  return item_item_tuning.TrainRows(
      users=np.array([0, 0, 1, 1]), items=np.array([1, 2, 1, 2]),
      timestamps=np.array([0.0, 1.0, 0.0, 1.0]),
      latest_histories=np.array([[1], [1]]))


def test_search_fits_without_validation_rows_and_picks_the_best_setting():
  num_items = 60
  fitted = []

  def fit(interactions, config):
    fitted.append((interactions.toarray(), config))
    b = np.zeros((num_items, num_items))
    # After item 1, 55 items score 2.0: item 2 is in the top 50 only with a
    # weight above that.
    b[1, 3:58] = 2.0
    b[1, 2] = config.weight
    return _neighbours(b)

  servable = np.arange(num_items) > 0
  config, curve, search_fit = item_item_tuning.search(
      fit, _Config(other=7), {"weight": (1.0, 3.0, 2.5), "other": (1, 2)},
      _rows(), servable, "toy", keep_best_fit=True)
  assert config == _Config(weight=3.0, other=7)
  # Each user's newest row (item 2) is held out of every fit.
  assert all(matrix[:, 2].sum() == 0 and matrix[:, 1].sum() == 2
             for matrix, _ in fitted)
  assert [c.weight for _, c in fitted] == [1.0, 3.0, 2.5]
  assert curve.family == "toy" and curve.metric == "recall_at_50"
  assert [(p.step, p.validation) for p in curve.points] == [
      (1.0, 0.0), (3.0, 1.0), (2.5, 1.0)]
  # Equals keep the first: 3.0, not 2.5, and its fit is returned.
  assert curve.best == 3.0 and curve.chosen == {"weight": 3.0}
  assert search_fit.neighbours.matrix()[1, 2] == 3.0
  assert search_fit.first_fit_seconds >= 0
  # Every metric of each setting: item 2 is first above 2.0 (NDCG 1), and
  # behind 55 items at 1.0.
  assert [p.metrics for p in curve.points] == [
      {"recall_at_10": 0.0, "recall_at_50": 0.0, "ndcg_at_10": 0.0},
      {"recall_at_10": 1.0, "recall_at_50": 1.0, "ndcg_at_10": 1.0},
      {"recall_at_10": 1.0, "recall_at_50": 1.0, "ndcg_at_10": 1.0}]


def test_above_the_cap_only_the_sampled_users_are_scored(monkeypatch):
  # Users 0 and 1 hold out items 2 and 3; after item 1, item 2 comes first
  # and 55 items come before item 3.
  rows = item_item_tuning.TrainRows(
      users=np.array([0, 0, 1, 1]), items=np.array([1, 2, 1, 3]),
      timestamps=np.array([0.0, 1.0, 0.0, 1.0]),
      latest_histories=np.array([[1], [1]]))
  fitted = []

  def fit(interactions, config):
    fitted.append(interactions.toarray())
    b = np.zeros((60, 60))
    b[1, 4:59] = 2.0
    b[1, 2] = config.weight
    return _neighbours(b)

  def recalls():
    _, curve, _ = item_item_tuning.search(fit, _Config(other=1),
                                       {"weight": (3.0,)}, rows,
                                       np.arange(60) > 0, "toy")
    return [point.validation for point in curve.points]

  assert recalls() == [0.5]
  monkeypatch.setattr(splits, "VALIDATION_MAX_USERS", 1)
  # User 0 has the lowest hash; both users' newest rows stay out of the fit.
  assert recalls() == [1.0]
  assert fitted[-1][:, 2:4].sum() == 0 and fitted[-1][:, 1].sum() == 2


def test_several_searched_hyperparameters_name_each_step():
  def fit(interactions, config):
    del interactions, config
    return _neighbours(np.zeros((5, 5)))

  _, curve, _ = item_item_tuning.search(
      fit, _Config(), {"weight": (1.0,), "other": (1, 2)}, _rows(),
      _SERVABLE, "toy")
  assert [p.step for p in curve.points] == ["weight=1.0, other=1",
                                            "weight=1.0, other=2"]
  assert curve.chosen == {"weight": 1.0, "other": 1}


def test_fixed_hyperparameters_are_not_searched():
  def fit(interactions, config):
    raise AssertionError("no fit without a search")

  assert item_item_tuning.search(
      fit, _Config(weight=1.0), {"weight": (1.0, 2.0)}, _rows(), _SERVABLE,
      "toy") == (_Config(weight=1.0), None, None)


def test_fit_each_fits_every_setting_in_one_call():
  calls = []

  def fit(interactions, config):
    raise AssertionError("fit_each is given: no fit one at a time")

  def fit_each(interactions, configs):
    calls.append([config.weight for config in configs])
    return (_neighbours(np.eye(5)[::-1] * config.weight) for config in configs)

  _, curve, _ = item_item_tuning.search(
      fit, _Config(other=7), {"weight": (1.0, 2.0, 3.0)}, _rows(), _SERVABLE,
      "toy", fit_each=fit_each)
  assert calls == [[1.0, 2.0, 3.0]]
  assert [p.step for p in curve.points] == [1.0, 2.0, 3.0]



def test_the_search_times_its_first_fit(monkeypatch):
  clock = [0.0]
  fit_seconds = {1.0: 40.0, 2.0: 5.0, 3.0: 5.0}

  def fit_each(interactions, configs):
    del interactions
    for config in configs:
      clock[0] += fit_seconds[config.weight]
      yield _neighbours(np.eye(5)[::-1] * config.weight)

  def fit(interactions, config):
    raise AssertionError("fit_each is given")

  monkeypatch.setattr(item_item_tuning.time, "perf_counter", lambda: clock[0])
  _, _, search_fit = item_item_tuning.search(
      fit, _Config(other=7), {"weight": (1.0, 2.0, 3.0)}, _rows(), _SERVABLE,
      "toy", fit_each=fit_each)
  # The first fit carries the work the settings share (EASE^R's G).
  assert search_fit.first_fit_seconds == 40.0


@pytest.mark.parametrize("keep_best_fit", [False, True])
def test_the_best_fit_stays_alive_only_when_it_is_kept(keep_best_fit):
  num_items = 60
  fitted = []
  alive_while_the_last_is_fitted = []

  def fit_each(interactions, configs):
    del interactions
    for config in configs:
      if config.weight == 2.0:
        gc.collect()
        alive_while_the_last_is_fitted.extend(
            ref() is not None for ref in fitted)
      b = np.zeros((num_items, num_items))
      b[1, 3:58] = 2.0
      b[1, 2] = config.weight
      neighbours = _neighbours(b)
      fitted.append(weakref.ref(neighbours))
      yield neighbours
      # As the families' own fits: no B of theirs outlives its yield.
      del neighbours

  def fit(interactions, config):
    raise AssertionError("fit_each is given")

  _, curve, search_fit = item_item_tuning.search(
      fit, _Config(other=7), {"weight": (3.0, 1.0, 2.0)}, _rows(),
      np.arange(num_items) > 0, "toy", fit_each=fit_each,
      keep_best_fit=keep_best_fit)
  assert curve.chosen == {"weight": 3.0}
  # 3.0 is the best; 1.0 was scored and freed.
  assert alive_while_the_last_is_fitted == [keep_best_fit, False]
  if keep_best_fit:
    assert search_fit.neighbours.matrix()[1, 2] == 3.0
  else:
    assert search_fit.neighbours is None
  assert search_fit.first_fit_seconds >= 0
