"""DIN as a CTR ranker over the whole history (a SEMINAR baseline).

Deep Interest Network (Zhou et al., KDD 2018): the candidate weighs every
history item with DIN's activation unit (`din_attention.DinAttention`), the
weighted sum is the user's interest in that candidate, and an MLP over
`[interest, candidate, interest * candidate]` gives the logit. Unlike SIM
and TWIN it searches nothing: every history item is scored, which is what
the long-history models avoid at serving.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from data import features
from models.layers import din_attention
from models.layers import mlp
from models.seminar import ctr_ranker
from models.seminar import item_features


class DinRanker(ctr_ranker.CtrRanker):
  """DIN's attention over every history item, then an MLP.

  Args:
    catalogue: every item's features (`item_features.ItemFeatures`).
    embedding_dim: item embedding width.
    attention_units: hidden sizes of DIN's activation unit.
    hidden_units: hidden sizes of the MLP before the logit.
  """

  def __init__(self, catalogue: item_features.ItemFeatures,
               embedding_dim: int, attention_units: Sequence[int] = (36,),
               hidden_units: Sequence[int] = (64, 32)):
    super().__init__(name="din")
    self.items = item_features.ItemFeatureEmbedding(catalogue, embedding_dim)
    self.attention = din_attention.DinAttention(attention_units)
    self.head = mlp.mlp(tuple(hidden_units) + (1,), "din_head")

  def logits(self, batch, training=False):
    history = batch[ctr_ranker.HISTORY]
    candidate = self.items(batch[ctr_ranker.CANDIDATE])
    interest = self.attention(candidate, self.items(history),
                              tf.not_equal(history, features.PADDING_INDEX))
    return tf.squeeze(self.head(tf.concat(
        [interest, candidate, interest * candidate], -1)), -1)
