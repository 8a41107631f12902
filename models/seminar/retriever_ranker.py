"""SEMINAR's (or the TWIN-style) retriever trained as a CTR ranker.

`SeminarRetriever.score` gives a candidate's logit (cosine over temperature
plus item bias) from the user's (query, item) pairs; this trains it with
the CTR task's cross-entropy instead of its next-item softmax, so that
SEMINAR, its ablations and the TWIN-style model compare with DIN and SIM on
one task and one loss.
"""

from __future__ import annotations

import tensorflow as tf

from models.seminar import ctr_ranker
from models.seminar import model as seminar


class RetrieverRanker(ctr_ranker.CtrRanker):
  """The logit of `retriever.score` for each example's one candidate.

  Args:
    retriever: the (PSU-restored or fresh) retriever; its top-K selection
      runs as in training (masked attention over the whole history).
  """

  def __init__(self, retriever: seminar.SeminarRetriever):
    super().__init__(name=f"{retriever.name}_ranker")
    self.retriever = retriever

  def logits(self, batch, training=False):
    del training  # `score` runs the attention without dropout.
    return self.retriever.score(
        batch[ctr_ranker.HISTORY], batch[ctr_ranker.KEYWORDS],
        batch[ctr_ranker.CANDIDATE][:, tf.newaxis])[:, 0]
