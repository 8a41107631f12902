"""Validation metrics of full-catalogue ranks, as evaluation reports them.

Every retrieval Trainer, neural (`models.retrieval.validation`) or
closed-form (`models.item_item.tuning`), ranks each validation row's target
against the catalogue and reduces the ranks here, to the three metrics the
run's evaluation and its claims use: Recall@10, Recall@50 and NDCG@10. The
Trainer picks its epoch or setting by Recall@50 (`SELECTION_METRIC`); the run
selects what it pushes on all three
(`tfx_pipeline.components.model_selector`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SELECTION_METRIC = "recall_at_50"


@dataclasses.dataclass(frozen=True)
class ValidationScores:
  """Means over the validation rows.

  Attributes:
    recall_at_10: share of targets ranked in the top 10.
    recall_at_50: share of targets ranked in the top 50.
    ndcg_at_10: 1 / log2(rank + 2) for targets in the top 10, else 0 (one
      relevant item per row, so the ideal DCG is 1).
  """
  recall_at_10: float
  recall_at_50: float
  ndcg_at_10: float

  def as_dict(self) -> dict[str, float]:
    return dataclasses.asdict(self)


def from_ranks(ranks: np.ndarray) -> ValidationScores:
  """The metrics of `[rows]` 0-based target ranks; all 0 for no rows."""
  ranks = np.asarray(ranks)
  if not len(ranks):
    return ValidationScores(0.0, 0.0, 0.0)
  in_top_10 = ranks < 10
  gains = np.zeros(len(ranks))
  gains[in_top_10] = 1.0 / np.log2(ranks[in_top_10] + 2.0)
  return ValidationScores(recall_at_10=float(np.mean(in_top_10)),
                          recall_at_50=float(np.mean(ranks < 50)),
                          ndcg_at_10=float(np.mean(gains)))
