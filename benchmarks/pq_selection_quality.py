"""How PQ selection ranks against exact selection on real data.

The TWIN-style retriever's targets, ranked with the history items selected
exactly or by product quantization with re-ranking (`pq_r<factor>`):
ranking metrics over the test users, tie-aware top-K overlap of the
selected items, and the users whose history is longer than the PQ
shortlist. Used by `benchmarks.pq_attention`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from benchmarks import seminar_data
from models.layers import target_attention
from models.seminar import model as seminar
from offline_eval import protocols


def tie_aware_overlap(exact: tf.Tensor, selected: tf.Tensor,
                      k: int) -> tf.Tensor:
  """`[R]` share of `selected` `[R, k]` positions whose `exact` `[R, L]`
  relevance (disallowed positions at -inf) reaches the row's K-th best."""
  kth = tf.math.top_k(exact, k).values[:, -1:]
  return tf.reduce_mean(tf.cast(
      tf.gather(exact, selected, batch_dims=1) >= kth, tf.float32), -1)


def _ranking_metrics(scores: np.ndarray) -> dict[str, float]:
  """Sampled-ranking metrics of `[U, 1 + negatives]` scores, target first."""
  metrics = protocols.sampled_ranking(scores[:, 0], scores[:, 1:], (10,))
  metrics["sampled_auc"] = protocols.sampled_auc(scores[:, 0], scores[:, 1:])
  return metrics


def selection_overlap(retriever, histories: np.ndarray, items: np.ndarray,
                      factors, users_per_call: int = 32
                      ) -> dict[int, np.ndarray]:
  """Per rerank factor, the `[U * C]` tie-aware top-K overlap of PQ with
  exact selection over padded `histories` `[U, L]`, one row per (user,
  candidate of `items` `[U, C]`)."""
  attention, k = retriever.attention, retriever.config.top_k
  overlaps = {factor: [] for factor in factors}
  for start in range(0, len(histories), users_per_call):
    history = tf.constant(histories[start:start + users_per_call])
    candidates = retriever.encoder.items(
        tf.constant(items[start:start + users_per_call]))
    rows = tf.shape(history)[0] * items.shape[1]
    mask = tf.reshape(tf.broadcast_to(
        tf.not_equal(history, 0)[:, None],
        [tf.shape(history)[0], items.shape[1], history.shape[1]]), [rows, -1])
    exact, approximate = (
        tf.where(mask, tf.reshape(scores, [rows, -1]), -np.inf)
        for scores in (attention.relevance(
            candidates, retriever.encoder.items(history)),
                       retriever.approximate_relevance(candidates, history)))
    for factor in factors:
      selected, _ = target_attention.rerank_positions(
          approximate, mask,
          lambda shortlist: tf.gather(exact, shortlist, batch_dims=1), k,
          factor)
      overlaps[factor].append(tie_aware_overlap(exact, selected, k).numpy())
  return {factor: np.concatenate(values) for factor, values in overlaps.items()}


def shortlist_below_history(retriever, dataset, items: np.ndarray, factors,
                            history_length: int) -> dict:
  """Exact vs PQ selection on test histories of `history_length`, where a
  shortlist shorter than a user's history can drop exact top-K items.

  For each rerank factor: the users whose history is longer than the
  shortlist, the top-K overlap on their rows, and the sampled-ranking
  metrics with exact and PQ selection over them and over every user.
  """
  data = seminar_data.SeminarData(dataset, history_length, 1)
  history = data.histories["test"][0]
  lengths = (history != 0).sum(axis=1)
  k = retriever.config.top_k
  scores = {}
  for mode, factor in [(seminar.ScoringMode.EXACT, 1)] + [
      (seminar.ScoringMode.PQ, factor) for factor in factors]:
    # `seminar_scorers` traces afresh, so the layer reads this factor.
    retriever.attention.rerank_factor = factor
    score_items, _ = seminar_data.seminar_scorers(retriever, data,
                                                dataset.num_items, mode)
    scores["exact" if mode == seminar.ScoringMode.EXACT
           else f"pq_r{factor}"] = score_items("test", items)
  retriever.attention.rerank_factor = 1
  overlaps = selection_overlap(retriever, history, items, factors)
  result = {"history_length": history_length, "users": len(history),
            "median_length": float(np.median(lengths)),
            "exact": _ranking_metrics(scores["exact"])}
  for factor in factors:
    over = lengths > factor * k
    name = f"pq_r{factor}"
    result[name] = {
        "shortlist": factor * k,
        "users_over_shortlist": int(over.sum()),
        "all_users": _ranking_metrics(scores[name]),
        **({"top_k_overlap_over_shortlist": float(
                overlaps[factor][np.repeat(over, items.shape[1])].mean()),
            "exact_over_shortlist": _ranking_metrics(scores["exact"][over]),
            "pq_over_shortlist": _ranking_metrics(scores[name][over])}
           if over.any() else {})}
  return result


def real_data_quality(retriever, data, dataset, factors,
                      score_history_lengths=()) -> dict:
  """Sampled ranking of the test targets and top-K overlap on the whole
  test-time histories, exact vs PQ selection at each rerank factor; with
  `score_history_lengths`, the same on test histories of those lengths
  (`shortlist_below_history`)."""
  interacted = [dataset.interacted(u) for u in range(dataset.num_users)]
  negatives = protocols.sample_negatives(dataset.num_items, interacted, low=1)
  items = np.concatenate([dataset.test_items[:, None], negatives], axis=1)
  attention, k = retriever.attention, retriever.config.top_k

  def ranking(mode):
    score_items, _ = seminar_data.seminar_scorers(retriever, data,
                                                dataset.num_items, mode)
    return _ranking_metrics(score_items("test", items))

  results = {"exact": ranking(seminar.ScoringMode.EXACT)}
  for factor in factors:
    # The retriever's layer reads the factor when `score` is traced;
    # `seminar_scorers` traces afresh.
    attention.rerank_factor = factor
    results[f"pq_r{factor}"] = ranking(seminar.ScoringMode.PQ)
  attention.rerank_factor = 1

  # Every user's whole test-time history (train items and the validation
  # target), not the last `history_length`, so that selection has work.
  histories = [np.append(sequence, dataset.valid_items[user])
               for user, sequence in enumerate(dataset.train_sequences)]
  lengths = np.array([len(history) for history in histories])
  padded = np.zeros((len(histories), lengths.max()), np.int64)
  for user, history in enumerate(histories):
    padded[user, :len(history)] = history
  overlaps = selection_overlap(retriever, padded, items, factors)
  # Rows where every factor's shortlist leaves items out.
  long_rows = np.repeat(lengths > max(factors) * k, items.shape[1])
  any_rows = np.repeat(lengths > k, items.shape[1])
  results["overlap"] = {
      f"pq_r{factor}": {
          "histories_over_k": float(values[any_rows].mean()),
          "histories_over_max_shortlist": float(values[long_rows].mean())}
      for factor, values in overlaps.items()}
  results["history_lengths"] = {
      "median": float(np.median(lengths)), "max": int(lengths.max()),
      "users_over_k": int((lengths > k).sum()),
      "users_over_max_shortlist": int((lengths > max(factors) * k).sum())}
  results["shortlist_below_history"] = [
      shortlist_below_history(retriever, dataset, items, factors, length)
      for length in score_history_lengths]
  return results
