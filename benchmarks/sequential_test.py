"""Tests for the sequential benchmark's EASE^R / item-kNN rows and table."""

import numpy as np
import pytest

from benchmarks import sequential
from models.item_item import fitters as item_item_fitters
from models.item_item import item_knn
from offline_eval import datasets


def tiny_dataset() -> datasets.SequenceDataset:
  """Three users over six items, for this test and `seminar_data_test`."""
  # Items 1..6 (0 is padding). In train, item 1 co-occurs with 2 (user 2)
  # and item 3 with 4 (user 1); user 0's validation item 3 is what links
  # their history to their test item 4.
  return datasets.SequenceDataset(
      name="tiny", user_ids=np.array(["a", "b", "c"]),
      item_ids=np.array(["", "1", "2", "3", "4", "5", "6"]),
      train_sequences=[np.array([1]), np.array([3, 4]), np.array([1, 2])],
      valid_items=np.array([3, 5, 5]), test_items=np.array([4, 6, 6]),
      item_categories=np.zeros((7, 1), np.int64), category_names=[""],
      item_tokens=np.zeros((7, 1), np.int64), token_names=[""])


def _protocol(dataset):
  protocol = sequential.Protocol(dataset, full_ranking_users=10,
                                 num_negatives=1)
  # One negative each, never interacted with: user 0's item 2 scores
  # cos(1, 2) > 0 from their train item 1; users 1 and 2's tie at 0 with
  # their targets, and ties count against the target.
  protocol.negatives = np.array([[2], [1], [3]])
  return protocol


def test_item_knn_row_reads_the_validation_item_only_for_test():
  dataset = tiny_dataset()
  metrics = sequential.run_item_item("item_knn", dataset, _protocol(dataset),
                                     args=None, seed=0)
  # Test ranks. Sampled: user 0's history {1, 3} scores target 4 by
  # cos(3, 4) = 1 / (1 + s) above negative 2 by cos(1, 2) = 1 / (sqrt(2) + s)
  # (rank 1); users 1 and 2 tie (rank 2). Without the validation item,
  # user 0's target would score 0 (rank 2).
  assert metrics["sampled_mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3)
  assert metrics["sampled_ndcg@5"] == pytest.approx(
      (1 + 2 / np.log2(3)) / 3)
  # Full ranking, train and validation items excluded: user 0's target 4
  # leads 2, 5 and 6 (rank 1); users 1 and 2's target ties at 0 with the
  # other two items left (rank 3).
  assert metrics["full_mrr"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
  assert metrics["full_ndcg@10"] == pytest.approx((1 + 2 * 0.5) / 3)
  # Every validation rank is 2 (user 0's target 3 scores 0 below 2), so
  # all settings tie and the first of the product grid is kept.
  config = item_knn.ItemKnnConfig()
  # Shrinkage first: the settings of one shrinkage share a pass.
  assert [row["hparams"] for row in metrics["tuning"]] == [
      {"neighbours": k, "shrinkage": s} for s in config.shrinkage_grid
      for k in config.neighbours_grid]
  assert [row["validation"] for row in metrics["tuning"]] == pytest.approx(
      [1 / np.log2(3)] * len(metrics["tuning"]))


def test_ease_row_tries_every_lambda_of_the_product_grid():
  dataset = tiny_dataset()
  metrics = sequential.run_item_item("ease", dataset, _protocol(dataset),
                                     args=None, seed=0)
  assert [row["hparams"]["l2"] for row in metrics["tuning"]] == list(
      item_item_fitters.FITTERS["ease"].default_config.l2_grid)
  assert 0 < metrics["sampled_mrr"] <= 1


def _stats(hr5):
  return {"sampled_hr@5": {"mean": hr5, "std": 0.0, "values": [hr5]},
          "seconds": {"mean": 1.0, "std": 0.0, "values": [1.0]}}


def test_table_compares_every_row_with_the_strongest_baseline():
  stats = {"mostpop": _stats(0.2), "ease": _stats(0.4),
           "item_knn": _stats(0.3), "twin": _stats(0.5)}
  assert sequential.strongest_baseline(stats) == "ease"
  table = sequential.results_table(stats)
  assert "HR@5 vs ease" in table
  twin_row = next(line for line in table.splitlines()
                  if line.startswith("| twin |"))
  assert "| 2.50x | 1.25x |" in twin_row
  assert sequential.strongest_baseline({"twin": _stats(0.5)}) is None
