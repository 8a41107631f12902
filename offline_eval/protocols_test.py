"""Known-value tests of the shared ranking protocols."""

import math

import numpy as np
import pytest

from offline_eval import protocols


def _fixed_scores(table):
  table = np.asarray(table, dtype=np.float64)
  return lambda users: table[users]


def test_full_ranking_single_target_known_ranks():
  scores = [[0.9, 0.8, 0.1, 0.5],   # target 1 at rank 2
            [0.1, 0.2, 0.3, 0.4]]   # target 0 at rank 4, item 3 excluded -> 3
  metrics = protocols.full_ranking(_fixed_scores(scores), np.array([0, 1]),
                                   targets=[np.array([1]), np.array([0])],
                                   exclude=[np.array([], int), np.array([3])],
                                   ks=(1, 2, 3))
  assert metrics["hr@1"] == 0.0
  assert metrics["hr@2"] == 0.5
  assert metrics["hr@3"] == 1.0
  assert metrics["ndcg@2"] == pytest.approx(0.5 / math.log2(3))
  assert metrics["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_full_ranking_never_excludes_a_target_and_counts_recall_per_target():
  scores = [[0.9, 0.8, 0.7, 0.1]]
  metrics = protocols.full_ranking(_fixed_scores(scores), np.array([0]),
                                   targets=[np.array([0, 3])],
                                   exclude=[np.array([0, 1])], ks=(2,))
  # Item 1 is excluded, item 0 is a target so stays: ranking 0, 2, 3.
  assert metrics["recall@2"] == 0.5
  assert metrics["hr@2"] == 1.0
  ideal = 1 + 1 / math.log2(3)
  assert metrics["ndcg@2"] == pytest.approx(1.0 / ideal)


def test_per_user_metrics_and_their_slice_means():
  scores = [[0.9, 0.8, 0.1, 0.5],   # target 1 at rank 2
            [0.1, 0.2, 0.3, 0.4],   # target 3 at rank 1
            [0.1, 0.2, 0.3, 0.4]]   # target 0 at rank 4
  args = (_fixed_scores(scores), np.arange(3),
          [np.array([1]), np.array([3]), np.array([0])])
  per_user = protocols.full_ranking_per_user(*args, ks=(2,))
  np.testing.assert_allclose(per_user["recall@2"], [1.0, 1.0, 0.0])
  np.testing.assert_allclose(per_user["mrr"], [1 / 2, 1.0, 1 / 4])
  assert protocols.full_ranking(*args, ks=(2,))["mrr"] == pytest.approx(
      (1 / 2 + 1 + 1 / 4) / 3)
  means = protocols.sliced_means(per_user, {
      "first two": np.array([True, True, False]),
      "last": np.array([False, False, True]),
      "nobody": np.zeros(3, bool)})
  assert means["first two"]["mrr"] == pytest.approx(0.75)
  assert means["last"]["recall@2"] == 0.0
  assert math.isnan(means["nobody"]["hr@2"])


def test_full_ranking_ties_count_against_the_target():
  metrics = protocols.full_ranking(_fixed_scores([[1.0, 1.0, 1.0]]), np.array([0]),
                                   targets=[np.array([0])], ks=(2,))
  assert metrics["hr@2"] == 0.0
  assert metrics["mrr"] == pytest.approx(1 / 3)


def test_full_ranking_ranks_among_the_catalogue_only():
  scores = [[0.1, 0.9, 0.8, 0.5, 0.4],   # target 3; items 1, 2 not served
            [0.1, 0.9, 0.8, 0.5, 0.4]]   # target 2, not served: worst rank
  catalogue = protocols.items_with_positives(
      [np.array([3, 4]), np.array([0, 4])], num_items=5)
  np.testing.assert_array_equal(catalogue, [True, False, False, True, True])
  metrics = protocols.full_ranking(_fixed_scores(scores), np.array([0, 1]),
                                   targets=[np.array([3]), np.array([2])],
                                   exclude=[np.array([4]), np.array([], int)],
                                   ks=(1,), catalogue=catalogue)
  # User 0: only 0 and 3 compete, 3 first. User 1: 0, 3 and 4 come first.
  assert metrics["hr@1"] == 0.5
  assert metrics["mrr"] == pytest.approx((1 + 1 / 4) / 2)


def test_full_ranking_chunks_do_not_change_results():
  rng = np.random.default_rng(0)
  table = rng.normal(size=(7, 20))
  targets = [rng.choice(20, size=2, replace=False) for _ in range(7)]
  args = (_fixed_scores(table), np.arange(7), targets)
  assert (protocols.full_ranking(*args, ks=(5,), chunk_size=2) ==
          pytest.approx(protocols.full_ranking(*args, ks=(5,), chunk_size=100)))


def test_sample_negatives_avoids_interacted_items_and_repeats():
  interacted = [np.array([1, 2, 3]), np.array([4])]
  negatives = protocols.sample_negatives(12, interacted, num_negatives=8, seed=3, low=1)
  assert negatives.shape == (2, 8)
  for row, seen in zip(negatives, interacted):
    assert len(set(row)) == 8
    assert not set(row) & set(seen)
    assert row.min() >= 1 and row.max() < 12
  again = protocols.sample_negatives(12, interacted, num_negatives=8, seed=3, low=1)
  np.testing.assert_array_equal(negatives, again)


def test_sample_negatives_rejects_users_without_enough_items():
  with pytest.raises(ValueError, match="fewer than 5"):
    protocols.sample_negatives(6, [np.array([1, 2])], num_negatives=5, low=1)


def test_sampled_ranking_uses_pessimistic_ties():
  positive = np.array([0.5, 0.5])
  negative = np.array([[0.1, 0.2, 0.3], [0.5, 0.9, 0.1]])
  metrics = protocols.sampled_ranking(positive, negative, ks=(1, 2))
  # Ranks 1 and 3.
  assert metrics["hr@1"] == 0.5
  assert metrics["hr@2"] == 0.5
  assert metrics["ndcg@2"] == pytest.approx(0.5)
  assert metrics["mrr"] == pytest.approx((1 + 1 / 3) / 2)


def test_auc_known_values_and_ties():
  assert protocols.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
  assert protocols.auc([0, 1], [0.3, 0.3]) == pytest.approx(0.5)
  with pytest.raises(ValueError):
    protocols.auc([1, 1], [0.1, 0.2])


def test_gauc_weights_groups_and_skips_single_class_groups():
  groups = np.array([1, 1, 2, 2, 2, 2, 3])
  labels = np.array([1, 0, 1, 0, 0, 1, 1])
  scores = np.array([0.9, 0.1, 0.2, 0.5, 0.1, 0.8, 0.3])
  # Group 1: AUC 1 (2 examples); group 2: AUC 0.75 (4); group 3 skipped.
  assert protocols.gauc(groups, labels, scores) == pytest.approx((2 * 1 + 4 * 0.75) / 6)


def test_log_loss_of_logits_known_values_and_extremes():
  # sigmoid(0) = 0.5 either way; sigmoid(log 3) = 0.75 for a positive.
  assert protocols.log_loss([1, 0, 1], [0.0, 0.0, np.log(3.0)]) == pytest.approx(
      (2 * np.log(2.0) - np.log(0.75)) / 3)
  # A confident wrong logit costs about its size, and never overflows.
  assert protocols.log_loss([0], [1000.0]) == pytest.approx(1000.0)


def test_sampled_auc_and_popularity():
  assert protocols.sampled_auc(np.array([0.5]), np.array([[0.1, 0.5, 0.9, 0.2]])) == (
      pytest.approx((2 + 0.5) / 4))
  np.testing.assert_array_equal(protocols.popularity_scores(np.array([1, 1, 3]), 5),
                                [0, 2, 0, 1, 0])
