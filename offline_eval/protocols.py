"""Ranking protocols used by every offline benchmark, so numbers compare.

- Full ranking: every item of the catalogue is scored; the user's known items
  are excluded except the targets themselves. The catalogue is what the
  pipeline's `evaluate` ranks among (`models.retrieval.export`): the items
  with a positive in the data the model was fit on (`items_with_positives`);
  a target outside it ranks after every item it competes with.
- Sampled ranking (ReChorus): the target is ranked against 99 items drawn
  uniformly from those the user never interacted with; ties count against the
  target, as in ReChorus' `(pred >= pred[:, 0]).sum()`.
- AUC and group AUC for CTR-style scoring.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]


def items_with_positives(train_items: Sequence[np.ndarray],
                         num_items: int) -> np.ndarray:
  """`[num_items]` whether each item index has a positive in `train_items`.

  The catalogue of `full_ranking`, as the pipeline's export builds it from
  its train split's positives.

  Args:
    train_items: per user, the item indices the model was fit on.
    num_items: one past the largest item index.
  """
  counts = np.bincount(
      np.concatenate([np.asarray(items, np.int64) for items in train_items]
                     or [np.zeros(0, np.int64)]), minlength=num_items)
  return counts[:num_items] > 0


def full_ranking(score_fn: ScoreFn, user_indices: np.ndarray,
                 targets: Sequence[np.ndarray],
                 exclude: Sequence[np.ndarray] | None = None,
                 ks: Sequence[int] = (10,),
                 chunk_size: int = 512,
                 catalogue: np.ndarray | None = None) -> dict[str, float]:
  """Full-ranking HR@k, Recall@k, NDCG@k and MRR, averaged over users.

  The means of `full_ranking_per_user`, whose arguments these are.
  """
  per_user = full_ranking_per_user(score_fn, user_indices, targets, exclude,
                                   ks, chunk_size, catalogue)
  return {name: float(values.mean()) for name, values in per_user.items()}


def full_ranking_per_user(score_fn: ScoreFn, user_indices: np.ndarray,
                          targets: Sequence[np.ndarray],
                          exclude: Sequence[np.ndarray] | None = None,
                          ks: Sequence[int] = (10,),
                          chunk_size: int = 512,
                          catalogue: np.ndarray | None = None
                          ) -> dict[str, np.ndarray]:
  """Full-ranking HR@k, Recall@k, NDCG@k and MRR of each user.

  Args:
    score_fn: `user_indices_chunk -> [n, num_items]` scores.
    user_indices: `[U]` the users to evaluate.
    targets: `targets[i]` are the relevant item indices of user i.
    exclude: `exclude[i]` are item indices never recommended to user i (e.g.
      the training history); a user's own targets are never excluded.
    ks: cut-offs.
    chunk_size: users scored per `score_fn` call, to bound memory.
    catalogue: `[num_items]` whether each item may be recommended at all,
      as `evaluate` serves only items with train positives
      (`items_with_positives`); the others, and score columns past its end
      (an out-of-vocabulary row), never compete, and a target outside it
      ranks after every item it competes with. None: every item.

  Returns:
    `[U]` per metric, in `user_indices` order: `hr@k` (some target in the
    top k), `recall@k` (share of targets in the top k), `ndcg@k` (binary
    relevance) for each k, and `mrr` (of the best-ranked target).
  """
  user_indices = np.asarray(user_indices)
  if len(targets) != len(user_indices):
    raise ValueError(f"{len(targets)} target lists for {len(user_indices)} users")
  per_user = {name: np.zeros(len(user_indices)) for k in ks
              for name in (f"hr@{k}", f"recall@{k}", f"ndcg@{k}")}
  per_user["mrr"] = np.zeros(len(user_indices))
  for start in range(0, len(user_indices), chunk_size):
    scores = np.array(score_fn(user_indices[start:start + chunk_size]),
                      dtype=np.float64)
    for row, user in enumerate(range(start, start + len(scores))):
      user_targets = np.unique(np.asarray(targets[user], dtype=np.int64))
      available = np.ones(scores.shape[1], bool)
      if catalogue is not None:
        available[len(catalogue):] = False
        available[:len(catalogue)] = catalogue
      if exclude is not None:
        excluded = np.setdiff1d(np.asarray(exclude[user], dtype=np.int64),
                                user_targets)
        available[excluded] = False
      scores[row, ~available] = -np.inf
      ranks = _ranks_of(scores[row], user_targets)
      # Targets are never excluded, so one that is not available is outside
      # the catalogue: as `evaluate` ranks it, after every available item.
      ranks = np.where(available[user_targets], ranks,
                       1 + np.count_nonzero(available))
      _record(per_user, user, ranks, len(user_targets), ks)
  return per_user


def _ranks_of(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
  """1-based ranks of `items` in `scores`: #(scores >= the item's score)."""
  ascending = np.sort(scores)
  return len(scores) - np.searchsorted(ascending, scores[items], side="left")


def _record(per_user: dict[str, np.ndarray], user: int, ranks: np.ndarray,
            num_targets: int, ks: Sequence[int]) -> None:
  ranks = np.sort(ranks)
  per_user["mrr"][user] = 1.0 / ranks[0]
  discounts = 1.0 / np.log2(ranks + 1.0)
  for k in ks:
    hits = ranks <= k
    per_user[f"hr@{k}"][user] = float(hits.any())
    per_user[f"recall@{k}"][user] = hits.sum() / num_targets
    ideal = np.sum(1.0 / np.log2(np.arange(2, min(num_targets, k) + 2)))
    per_user[f"ndcg@{k}"][user] = discounts[hits].sum() / ideal


def sliced_means(per_user: Mapping[str, np.ndarray],
                 slices: Mapping[str, np.ndarray]
                 ) -> dict[str, dict[str, float]]:
  """Per slice, the mean of each per-user metric over the slice's users.

  Args:
    per_user: metric -> `[U]` values (`full_ranking_per_user`).
    slices: slice name -> `[U]` bool, which users it holds.

  Returns:
    Slice -> metric -> mean; an empty slice's metrics are NaN.
  """
  return {name: {metric: float(values[mask].mean()) if mask.any()
                 else float("nan") for metric, values in per_user.items()}
          for name, mask in slices.items()}


def sample_negatives(num_items: int, interacted: Sequence[np.ndarray],
                     num_negatives: int = 99, seed: int = 0,
                     low: int = 0) -> np.ndarray:
  """Items in `[low, num_items)` each user never interacted with, uniformly.

  Args:
    num_items: one past the largest item index.
    interacted: `interacted[i]` are every item index user i interacted with
      (train, valid and test), which are never drawn.
    num_negatives: negatives per user (99 in ReChorus).
    seed: the sampling seed.
    low: the smallest item index (1 when 0 is padding).

  Returns:
    `[U, num_negatives]` item indices, without repeats within a row.
  """
  rng = np.random.default_rng(seed)
  available = num_items - low
  negatives = np.empty((len(interacted), num_negatives), dtype=np.int64)
  for user, items in enumerate(interacted):
    seen = set(np.asarray(items, dtype=np.int64).tolist())
    if available - len(seen & set(range(low, num_items))) < num_negatives:
      raise ValueError(f"user {user} has fewer than {num_negatives} items "
                       "left to sample negatives from")
    row: list[int] = []
    chosen: set[int] = set()
    while len(row) < num_negatives:
      for item in rng.integers(low, num_items, size=2 * num_negatives).tolist():
        if item not in seen and item not in chosen:
          chosen.add(item)
          row.append(item)
          if len(row) == num_negatives:
            break
    negatives[user] = row
  return negatives


def sampled_ranking(positive_scores: np.ndarray, negative_scores: np.ndarray,
                    ks: Sequence[int] = (5, 10)) -> dict[str, float]:
  """HR@k, NDCG@k and MRR of one positive against sampled negatives.

  Args:
    positive_scores: `[U]` score of each user's target.
    negative_scores: `[U, n]` scores of the user's sampled negatives.
    ks: cut-offs.

  Returns:
    Means over users; rank = 1 + #(negatives scored >= the positive).
  """
  positive_scores = np.asarray(positive_scores, dtype=np.float64)
  negative_scores = np.asarray(negative_scores, dtype=np.float64)
  ranks = 1 + np.sum(negative_scores >= positive_scores[:, None], axis=1)
  metrics = {"mrr": float(np.mean(1.0 / ranks))}
  for k in ks:
    hits = ranks <= k
    metrics[f"hr@{k}"] = float(np.mean(hits))
    metrics[f"ndcg@{k}"] = float(np.mean(np.where(hits, 1.0 / np.log2(ranks + 1.0), 0.0)))
  return metrics


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """Area under the ROC curve; tied scores count one half."""
  labels = np.asarray(labels).astype(bool)
  scores = np.asarray(scores, dtype=np.float64)
  num_positive = int(labels.sum())
  num_negative = len(labels) - num_positive
  if num_positive == 0 or num_negative == 0:
    raise ValueError("AUC needs both positive and negative labels")
  order = np.argsort(scores, kind="mergesort")
  ranks = np.empty(len(scores), dtype=np.float64)
  sorted_scores = scores[order]
  # Average ranks over ties (1-based), the Mann-Whitney form of the AUC.
  _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
  average = first + (counts + 1) / 2.0
  ranks[order] = np.repeat(average, counts)
  positive_rank_sum = ranks[labels].sum()
  return float((positive_rank_sum - num_positive * (num_positive + 1) / 2.0) /
               (num_positive * num_negative))


def gauc(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
  """Group AUC: per-group AUC weighted by the group's example count.

  Groups (users) whose examples are all one class have no AUC and are skipped,
  as in the DIN paper's definition.
  """
  groups = np.asarray(groups)
  labels = np.asarray(labels).astype(bool)
  scores = np.asarray(scores, dtype=np.float64)
  order = np.argsort(groups, kind="mergesort")
  groups, labels, scores = groups[order], labels[order], scores[order]
  boundaries = np.flatnonzero(np.diff(groups)) + 1
  weighted, weight = 0.0, 0
  for group_labels, group_scores in zip(np.split(labels, boundaries),
                                        np.split(scores, boundaries)):
    if group_labels.all() or not group_labels.any():
      continue
    weighted += len(group_labels) * auc(group_labels, group_scores)
    weight += len(group_labels)
  if weight == 0:
    raise ValueError("no group has both positive and negative labels")
  return weighted / weight


def log_loss(labels: np.ndarray, logits: np.ndarray) -> float:
  """Mean binary cross-entropy of `sigmoid(logits)`, computed from the logits.

  `softplus(z) - y z` equals `-y log p - (1 - y) log(1 - p)` for
  `p = sigmoid(z)` and stays finite for any logit.
  """
  labels = np.asarray(labels, dtype=np.float64)
  logits = np.asarray(logits, dtype=np.float64)
  return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))


def sampled_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
  """Mean over users of the share of negatives scored below the positive."""
  positive_scores = np.asarray(positive_scores, dtype=np.float64)[:, None]
  negative_scores = np.asarray(negative_scores, dtype=np.float64)
  wins = (negative_scores < positive_scores) + 0.5 * (negative_scores == positive_scores)
  return float(np.mean(wins.mean(axis=1)))


def popularity_scores(train_item_indices: np.ndarray, num_items: int) -> np.ndarray:
  """Train-split interaction counts per item: the MostPop baseline's scores."""
  return np.bincount(np.asarray(train_item_indices, dtype=np.int64),
                     minlength=num_items).astype(np.float64)[:num_items]


def ratio(metrics: Mapping[str, float], baseline: Mapping[str, float],
          name: str) -> float:
  """`metrics[name] / baseline[name]`, inf when the baseline is zero."""
  return metrics[name] / baseline[name] if baseline[name] else float("inf")
