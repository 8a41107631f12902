"""Tests for the softmax step-time benchmark, on tiny catalogues."""

import json

import numpy as np

from benchmarks import softmax_cost
from data import features
from models.retrieval import sasrec


def test_synthetic_catalogue_draws_only_real_items_by_zipf():
  vocab, catalogue, probability = softmax_cost.synthetic_catalogue(
      4, np.random.default_rng(0))
  assert vocab.items == 6  # Padding, 4 items, OOV.
  assert catalogue[features.TITLE_TOKEN_INDICES].shape == (
      6, features.TITLE_LENGTH)
  np.testing.assert_allclose(probability,
                             np.array([0, 12, 6, 4, 3, 0]) / 25)


def test_sequence_batch_is_full_windows_of_the_positions():
  _, _, probability = softmax_cost.synthetic_catalogue(
      4, np.random.default_rng(0))
  batch = softmax_cost.sequence_batch(probability, 2 * features.HISTORY_LENGTH,
                                      np.random.default_rng(0))
  history = batch[features.HISTORY_ITEM_INDICES].numpy()
  targets = batch[features.ITEM_INDEX].numpy()
  assert history.shape == targets.shape == (2, features.HISTORY_LENGTH)
  # Each position's target is the next position's history item.
  np.testing.assert_array_equal(history[:, 1:], targets[:, :-1])
  assert set(np.unique(history)) <= {1, 2, 3, 4}


def test_exact_softmax_is_timed_only_up_to_its_largest_catalogue(tmp_path):
  output = tmp_path / "cost.json"
  softmax_cost.main(["--items", "30", "20", "--exact-max-items", "20",
                     "--warm-up", "1", "--steps", "1",
                     "--output", str(output)])
  written = json.loads(output.read_text())
  assert written["complete"]
  rows = written["rows"]
  assert [row["items"] for row in rows] == [20, 30]
  assert rows[0]["sampled_over_exact"] == round(
      rows[0]["sampled_step_s"] / rows[0]["exact_step_s"], 3)
  assert "exact_step_s" not in rows[1]
  assert all(row[f"{variant}_step_s"] > 0
             for row in rows for variant in ("sampled", "sampled_lazy",
                                             "two_tower", "two_tower_lazy"))


def test_positions_per_batch_sets_the_sequence_config():
  args = softmax_cost.argument_parser().parse_args(
      ["--positions-per-batch", "100", "--output", "out.json"])
  assert softmax_cost.sequence_config(
      args.positions_per_batch).positions_per_batch == 100
  default = softmax_cost.argument_parser().parse_args(["--output", "out.json"])
  assert softmax_cost.sequence_config(default.positions_per_batch) == (
      sasrec.SasRecConfig())
