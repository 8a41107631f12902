"""Tests for the validation metrics of target ranks."""

import numpy as np
import pytest

from models import validation_scores


def test_metrics_of_known_ranks():
  # Ranks 0 and 9 are in both top-10 and top-50, 10 and 49 only in the
  # top 50, 50 in neither.
  scores = validation_scores.from_ranks(np.array([0, 9, 10, 49, 50]))
  assert scores.recall_at_10 == pytest.approx(2 / 5)
  assert scores.recall_at_50 == pytest.approx(4 / 5)
  assert scores.ndcg_at_10 == pytest.approx((1.0 + 1 / np.log2(11)) / 5)


def test_no_rows_score_zero():
  assert validation_scores.from_ranks(np.array([], np.int64)).as_dict() == {
      "recall_at_10": 0.0, "recall_at_50": 0.0, "ndcg_at_10": 0.0}


def test_a_very_large_rank_is_no_hit():
  scores = validation_scores.from_ranks(np.array([np.iinfo(np.int64).max]))
  assert scores.as_dict() == {"recall_at_10": 0.0, "recall_at_50": 0.0,
                              "ndcg_at_10": 0.0}
