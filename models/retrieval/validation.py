"""Full-catalogue validation of a retrieval model on rows carved from train.

Early stopping must never read the eval split, so the neural Trainers hold
out each user's newest train example (`data.splits.latest_per_user_mask`,
users with one example keep it) and score, after every epoch, how the
model's query for each held-out row ranks its target among every servable
item outside the row's history, the way the exported `evaluate` signature
ranks an eval example (ties count against the target).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import catalogue_scoring

RECALL_K = 50
NDCG_K = 10
# Validation rows scored at once: at most this many, and fewer for a large
# catalogue, so that a `[rows, items]` score block (and its masks) stays
# within `_CELLS_PER_BLOCK` cells, 64 MiB of float32, at any catalogue size.
_MAX_ROWS_PER_BLOCK = 1024
_CELLS_PER_BLOCK = 1 << 24


def rows_per_block(num_items: int, cells_per_block: int | None = None) -> int:
  """Validation rows scored at once against `num_items` items; the block
  holds at most `cells_per_block` (default `_CELLS_PER_BLOCK`) scores."""
  cells = _CELLS_PER_BLOCK if cells_per_block is None else cells_per_block
  return max(1, min(_MAX_ROWS_PER_BLOCK, cells // max(1, num_items)))


@dataclasses.dataclass(frozen=True)
class ValidationScores:
  """Means over the validation rows.

  Attributes:
    recall_at_50: share of targets ranked in the top 50.
    ndcg_at_10: 1 / log2(rank + 2) for targets in the top 10, else 0.
  """
  recall_at_50: float
  ndcg_at_10: float


def target_ranks(scores: np.ndarray, histories: np.ndarray,
                 targets: np.ndarray, servable: np.ndarray) -> np.ndarray:
  """0-based rank of each target among its row's available items.

  Args:
    scores: `[rows, items]` model scores.
    histories: `[rows, length]` item indices to exclude, padding 0.
    targets: `[rows]` item indices.
    servable: `[items]` items that can be recommended at all.

  Returns:
    `[rows]` ranks: the available items (servable, not in the history)
    other than the target that score at least as high; a target that is
    not available gets the number of available items.
  """
  rows = np.arange(len(targets))
  available = np.tile(servable, (len(targets), 1))
  available[np.repeat(rows, histories.shape[1]), histories.ravel()] = False
  reachable = available[rows, targets]
  available[rows, targets] = False
  ahead = np.sum(available & (scores >= scores[rows, targets][:, np.newaxis]),
                 axis=1)
  return np.where(reachable, ahead, available.sum(axis=1))


class Validator:
  """Scores a model's towers on fixed validation rows.

  The towers are traced once; each call reads their current weights.

  Args:
    rows: transformed features of the validation rows, as the query tower
      reads them, with their `ITEM_INDEX` targets.
    catalogue: the items to rank: every index, its candidate features and
      train counts (items without train positives are not servable).
    query_tower: features -> `[batch, dim]` (or `[batch, K, dim]`) queries.
    candidate_tower: candidate features -> `[items, dim]` vectors.

  Raises:
    ValueError: if there is no validation row.
  """

  def __init__(self, rows: Mapping[str, np.ndarray],
               catalogue: catalogue_lib.ItemCatalogue,
               query_tower: Callable, candidate_tower: Callable):
    if not len(rows[features.ITEM_INDEX]):
      raise ValueError("no validation row: no user has two train examples")
    # In history-length order, so that each block is trimmed to its longest
    # history: most histories are short, and the query towers mask padding.
    self.lengths = np.sum(
        rows[features.HISTORY_ITEM_INDICES] != features.PADDING_INDEX, axis=1)
    order = np.argsort(self.lengths, kind="stable")
    self.lengths = self.lengths[order]
    self.rows = {name: values[order] for name, values in rows.items()}
    self.candidate_features = {
        name: tf.constant(values)
        for name, values in catalogue.candidate_features.items()}
    self.servable = catalogue.train_counts > 0
    # Blocks differ in width: one trace for any shape after the second.
    self.query_tower = tf.function(query_tower, reduce_retracing=True)
    self.candidate_tower = tf.function(candidate_tower)

  def __call__(self) -> ValidationScores:
    items = self.candidate_tower(self.candidate_features)
    block_rows = rows_per_block(len(self.servable))
    ranks = []
    for start in range(0, len(self.rows[features.ITEM_INDEX]), block_rows):
      block = {name: values[start:start + block_rows]
               for name, values in self.rows.items()}
      width = max(1, int(self.lengths[start:start + block_rows].max()))
      block[features.HISTORY_ITEM_INDICES] = block[
          features.HISTORY_ITEM_INDICES][:, :width]
      scores = catalogue_scoring.score_items(
          self.query_tower({name: tf.constant(values)
                            for name, values in block.items()}), items)
      ranks.append(target_ranks(
          scores.numpy(), block[features.HISTORY_ITEM_INDICES],
          np.reshape(block[features.ITEM_INDEX], [-1]), self.servable))
    rank = np.concatenate(ranks)
    return ValidationScores(
        recall_at_50=float(np.mean(rank < RECALL_K)),
        ndcg_at_10=float(np.mean(np.where(rank < NDCG_K,
                                          1.0 / np.log2(rank + 2.0), 0.0))))
