"""What the `seminar` ranker's SavedModel serves: `SeminarScorer`.

The `seminar` Trainer saves `SeminarScorer` inside
`models.ctr.export.RankingServingModule` (raw features in, `probability`
out, from `serving_default` and `evaluate`), so SEMINAR is served like the
`ranking` family.

The export reads history queries the same way as training: from the
`history_queries` of a request (`serving_names.RANKER_HISTORY_QUERIES`) or of
an eval example; a history item whose query is "" or missing, and every item
of a `serving_default` request, gets its derived query.

`attention_scoring` picks the export's top-K selection: "exact", or "pq":
the item keys are product-quantised once, at export
(`SeminarRetriever.quantize_item_keys`), and the codes are constants of the
SavedModel; "pq_xla" compiles the lookup-table scoring with XLA, which the
serving runtime must support (TF Serving on CPU:
`--xla_cpu_compilation_enabled=true`). Queries do not change the codes: the
top-K selection runs on item keys only, and a history's queries enter the
exact attention over the selected items and the most recent pair, in every
mode. The score is calibrated to a click probability by Platt scaling
(`calibration`) fitted on a sample of the labelled train examples (positives
and ExampleGen's sampled negatives), so that the Evaluator's log-loss bound
applies as it does to the `ranking` family.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from data import features
from models.seminar import inputs as seminar_inputs
from models.seminar import model as seminar


class SeminarScorer(tf.Module):
  """Transformed features -> the logit that the user picks the example's item.

  Args:
    retriever: the trained retriever; with `ScoringMode.PQ`, after
      `quantize_item_keys()`.
    keywords_of_items: `[num_items, K]` derived queries, for history items
      without one in `HISTORY_QUERY_TOKEN_INDICES`.
    mode: exact or PQ-approximate top-K selection.
    calibration: Platt `(a, b)`: the logit is `a * score + b`.
  """

  def __init__(self, retriever: seminar.SeminarRetriever,
               keywords_of_items: np.ndarray,
               mode: seminar.ScoringMode = seminar.ScoringMode.EXACT,
               calibration: tuple[float, float] = (1.0, 0.0)):
    super().__init__()
    self.retriever = retriever
    self.keywords_of_items = tf.constant(keywords_of_items, tf.int64)
    self.mode = seminar.ScoringMode(mode)
    self.calibration = calibration

  @property
  def variables(self):
    return self.retriever.variables

  def scores(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch]` uncalibrated scores of `ITEM_INDEX` after the history."""
    history = transformed[features.HISTORY_ITEM_INDICES]
    query_tokens = tf.reshape(
        transformed[features.HISTORY_QUERY_TOKEN_INDICES],
        [tf.shape(history)[0], tf.shape(history)[1], features.QUERY_LENGTH])
    keywords = seminar_inputs.keywords_with_queries(
        tf.gather(self.keywords_of_items, history), query_tokens)
    candidates = tf.reshape(transformed[features.ITEM_INDEX], [-1, 1])
    return self.retriever.score_selected(history, keywords, candidates,
                                         self.mode)[:, 0]

  def __call__(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    slope, intercept = self.calibration
    return slope * self.scores(transformed) + intercept
