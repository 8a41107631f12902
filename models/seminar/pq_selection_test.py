"""PQ top-K selection against exact selection where the shortlist is shorter
than the history, so that agreement is measured, not given by construction.

Histories of 200 distinct items over a 1,000-item catalogue, K = 10, the
shipped 16 x 256 PQ codebooks: a shortlist of 20 (rerank factor 2) or 80 (the
shipped factor 8) leaves most of each history out. The retriever is
untrained (seeded): selection quality is a property of the quantiser and the
reranking, not of training.
"""

import numpy as np
import pytest
import tensorflow as tf

from models.layers import target_attention
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu

NUM_ITEMS = 1001  # index 0 is padding
HISTORY = 200
USERS = 32
CANDIDATES = 8
TOP_K = 10


@pytest.fixture(scope="module")
def setting():
  """A quantised retriever, histories and per-user candidates."""
  tf.keras.utils.set_random_seed(0)
  _, retriever = seminar_psu.build_seminar(
      np.zeros((NUM_ITEMS, 1), np.int64), 2,
      seminar.SeminarConfig(top_k=TOP_K, use_queries=False, use_text=False))
  rng = np.random.default_rng(0)
  histories = tf.constant(np.stack([
      rng.choice(np.arange(1, NUM_ITEMS), HISTORY, replace=False)
      for _ in range(USERS)]), tf.int64)
  candidates = tf.constant(rng.integers(1, NUM_ITEMS, (USERS, CANDIDATES)),
                           tf.int64)
  retriever.quantize_item_keys()
  return retriever, histories, candidates


def _overlap_with_exact(retriever, histories, candidates, factor: int) -> float:
  """Mean share of the exact top-K that PQ selection at `factor` keeps."""
  candidate_vectors = retriever.encoder.items(candidates)
  exact = retriever.attention.relevance(candidate_vectors,
                                        retriever.encoder.items(histories))
  selected, _ = target_attention.rerank_positions(
      retriever.approximate_relevance(candidate_vectors, histories),
      tf.ones_like(exact, tf.bool),
      lambda shortlist: tf.gather(exact, shortlist, batch_dims=2), TOP_K,
      factor)
  exact_top = tf.math.top_k(exact, TOP_K).indices.numpy()
  kept = (selected.numpy()[..., :, None] == exact_top[..., None, :]).any(-1)
  return float(kept.mean())


@pytest.mark.parametrize("factor, bound", [(2, 0.9), (8, 0.99)])
def test_pq_selection_keeps_the_exact_top_k_of_longer_histories(
    setting, factor, bound):
  retriever, histories, candidates = setting
  assert factor * TOP_K < HISTORY
  assert _overlap_with_exact(retriever, histories, candidates, factor) >= bound


def test_pq_scores_mostly_equal_exact_scores_with_a_shortlist_of_20(setting):
  retriever, histories, candidates = setting
  retriever.attention.rerank_factor = 2
  keywords = tf.zeros([USERS, HISTORY, 1], tf.int64)
  exact = retriever.score_selected(histories, keywords, candidates,
                                   seminar.ScoringMode.EXACT).numpy()
  approximate = retriever.score_selected(histories, keywords, candidates,
                                         seminar.ScoringMode.PQ).numpy()
  retriever.attention.rerank_factor = seminar.SeminarConfig.pq_rerank_factor
  # A score is equal when the same K items were selected.
  assert np.isclose(approximate, exact, rtol=1e-5, atol=1e-6).mean() >= 0.5
