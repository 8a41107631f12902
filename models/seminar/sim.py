"""SIM with hard search as a CTR ranker (a SEMINAR baseline).

SIM (Pi et al., CIKM 2020): hard search (`hard_search.same_category_mask`)
keeps the history items of the candidate's category; multi-head target
attention (`target_attention.MultiHeadTargetAttention`, the attention
SEMINAR and TWIN use, here over every kept item) from the candidate over
them is the user's interest; an MLP over `[interest, candidate,
interest * candidate]` gives the logit.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from data import features
from models.layers import mlp
from models.layers import target_attention
from models.seminar import ctr_ranker
from models.seminar import hard_search
from models.seminar import item_features


class SimRanker(ctr_ranker.CtrRanker):
  """Hard search by category, then target attention, then an MLP.

  Args:
    catalogue: every item's features (`item_features.ItemFeatures`).
    embedding_dim: item embedding and attention width.
    num_heads: attention heads.
    hidden_units: hidden sizes of the MLP before the logit.
  """

  def __init__(self, catalogue: item_features.ItemFeatures,
               embedding_dim: int, num_heads: int = 2,
               hidden_units: Sequence[int] = (64, 32)):
    super().__init__(name="sim")
    self.items = item_features.ItemFeatureEmbedding(catalogue, embedding_dim)
    self.attention = target_attention.MultiHeadTargetAttention(
        num_heads, embedding_dim)
    self.head = mlp.mlp(tuple(hidden_units) + (1,), "sim_head")

  def logits(self, batch, training=False):
    history = batch[ctr_ranker.HISTORY]
    candidate_ids = batch[ctr_ranker.CANDIDATE]
    kept = hard_search.same_category_mask(
        self.items.categories(history), self.items.categories(candidate_ids),
        tf.not_equal(history, features.PADDING_INDEX))
    candidate = self.items(candidate_ids)
    interest = self.attention(candidate[:, tf.newaxis], self.items(history),
                              kept, training=training)[:, 0]
    return tf.squeeze(self.head(tf.concat(
        [interest, candidate, interest * candidate], -1)), -1)
