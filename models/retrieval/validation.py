"""Full-catalogue validation of a retrieval model on rows carved from train.

Early stopping must never read the eval split, so the neural Trainers hold
out each user's newest train example (`data.splits.latest_per_user_mask`,
users with one example keep it) and score, after every epoch, how the
model's query for each held-out row ranks its target among every servable
item outside the row's history, the way the exported `evaluate` signature
ranks an eval example (ties count against the target).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import catalogue_scoring
from models import validation_scores

# Validation rows queried at once, and the scores held at once: a block's
# rows are ranked against the catalogue a chunk of items at a time, each
# `[rows, items]` chunk within `_CELLS_PER_CHUNK` cells (64 MiB of float32)
# at any catalogue size. Many rows per chunk keep the product compute-bound:
# a few rows against every item re-read the whole item matrix per block.
_ROWS_PER_BLOCK = 2048
_CELLS_PER_CHUNK = 1 << 24

# `(start, stop) -> [rows, stop - start]` scores of item indices start...stop-1.
ItemRangeScorer = Callable[[int, int], np.ndarray]


def target_ranks(score_chunk: ItemRangeScorer, target_scores: np.ndarray,
                 histories: np.ndarray, targets: np.ndarray,
                 servable: np.ndarray, items_per_chunk: int) -> np.ndarray:
  """0-based rank of each target among its row's available items.

  The catalogue is scored `items_per_chunk` items at a time; the ranks are
  those of scoring it at once. The serving `evaluate` signature's twin,
  `catalogue_scoring.chunked_target_ranks`, reads each target's score from
  its own chunk, scoring every chunk that holds a target twice: with 2,048
  rows a block nearly every chunk holds one, so here the target scores come
  in from one small product instead (`Validator`).

  Args:
    score_chunk: the rows' scores of a range of items.
    target_scores: `[rows]` each row's score of its target.
    histories: `[rows, length]` item indices to exclude, padding 0.
    targets: `[rows]` item indices.
    servable: `[items]` items that can be recommended at all.
    items_per_chunk: items scored at once.

  Returns:
    `[rows]` ranks: the available items (servable, not in the history)
    other than the target that score at least as high; a target that is
    not available gets the number of available items.
  """
  rows = np.arange(len(targets))
  # The (row, item) pairs that never compete: each row's history and target,
  # in item order so that each chunk's are one slice.
  excluded_rows = np.concatenate([np.repeat(rows, histories.shape[1]), rows])
  excluded_items = np.concatenate([histories.ravel(), targets])
  order = np.argsort(excluded_items, kind="stable")
  excluded_rows, excluded_items = excluded_rows[order], excluded_items[order]
  ahead = np.zeros(len(targets), np.int64)
  for start in range(0, len(servable), items_per_chunk):
    stop = min(start + items_per_chunk, len(servable))
    at_least = score_chunk(start, stop) >= target_scores[:, np.newaxis]
    first, last = np.searchsorted(excluded_items, [start, stop])
    at_least[excluded_rows[first:last],
             excluded_items[first:last] - start] = False
    ahead += np.count_nonzero(at_least & servable[start:stop], axis=1)
  # A target in its history or unservable gets every available item.
  ordered = np.sort(histories, axis=1)
  distinct = np.ones(ordered.shape, bool)
  distinct[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
  available = servable.sum() - np.sum(distinct & servable[ordered], axis=1)
  reachable = servable[targets] & ~np.any(histories == targets[:, np.newaxis],
                                          axis=1)
  return np.where(reachable, ahead, available)


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

  def __call__(self) -> validation_scores.ValidationScores:
    items = self.candidate_tower(self.candidate_features)
    return validation_scores.from_ranks(np.concatenate([
        self._block_ranks(start, items)
        for start in range(0, len(self.lengths), _ROWS_PER_BLOCK)]))

  def _block_ranks(self, start: int, items: tf.Tensor) -> np.ndarray:
    """The target ranks of the rows `start...start + _ROWS_PER_BLOCK - 1`."""
    block = {name: values[start:start + _ROWS_PER_BLOCK]
             for name, values in self.rows.items()}
    width = max(1, int(self.lengths[start:start + _ROWS_PER_BLOCK].max()))
    histories = block[features.HISTORY_ITEM_INDICES][:, :width]
    block[features.HISTORY_ITEM_INDICES] = histories
    queries = self.query_tower({name: tf.constant(values)
                                for name, values in block.items()})
    targets = np.reshape(block[features.ITEM_INDEX], [-1])
    # Each row's own target, from a product of the same kind as the chunks'
    # (one row of a matmul): its last bit may still depend on the shape, so
    # an item within an ulp of the target may fall on either side.
    target_scores = np.diagonal(catalogue_scoring.score_items(
        queries, tf.gather(items, targets)).numpy())
    return target_ranks(
        lambda first, stop: catalogue_scoring.score_items(
            queries, items[first:stop]).numpy(),
        target_scores, histories, targets, self.servable,
        items_per_chunk=max(1, _CELLS_PER_CHUNK // len(targets)))
