"""SEMINAR's inputs and scorers for the offline benchmarks.

`SeminarData` derives each interaction's query once and builds the train
windows and evaluation histories of a `datasets.SequenceDataset`;
`build_seminar_models` builds the PSU and the retriever; `seminar_scorers`
scores per-user candidates and the whole catalogue with the retriever.
`benchmarks.sequential`, `benchmarks.pq_attention` and
`benchmarks.pq_selection_quality` read them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data import derived_queries
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu
from offline_eval import datasets


# The right-padded sequences of a SEMINAR training window.
WINDOW_SEQUENCES = ("items", "keywords")


class SeminarData:
  """Per-interaction queries, train windows and evaluation histories.

  Queries are derived once per interaction (train and validation) from the
  item's tokens, so a history position keeps its query in every split.
  """

  def __init__(self, dataset: datasets.SequenceDataset, history_length: int,
               num_keywords: int):
    self.history_length = history_length
    sequences = [np.append(sequence, dataset.valid_items[user])
                 for user, sequence in enumerate(dataset.train_sequences)]
    flat_queries = derived_queries.derive_queries(
        np.concatenate(sequences), dataset.item_tokens, num_keywords)
    boundaries = np.cumsum([len(sequence) for sequence in sequences])[:-1]
    queries = np.split(flat_queries, boundaries)
    window = history_length + 1
    items, keywords = [], []
    for sequence, sequence_queries in zip(sequences, queries):
      train_length = len(sequence) - 1
      end = train_length
      # Windows of `history_length + 1` from the newest train item back,
      # overlapping by one so that every train item is a target once.
      while end >= 2:
        start = max(0, end - window)
        items.append(self._pad(sequence[start:end]))
        keywords.append(self._pad(sequence_queries[start:end]))
        end = start + 1 if start else 0
    self.windows = {"items": np.stack(items), "keywords": np.stack(keywords)}
    self.histories = {}
    for split, extra in (("valid", 0), ("test", 1)):
      rows = [(sequence[:len(sequence) - 1 + extra][-history_length:],
               sequence_queries[:len(sequence) - 1 + extra][-history_length:])
              for sequence, sequence_queries in zip(sequences, queries)]
      self.histories[split] = (
          np.stack([self._pad(row_items, history_length)
                    for row_items, _ in rows]),
          np.stack([self._pad(row_queries, history_length)
                    for _, row_queries in rows]))

  def _pad(self, values: np.ndarray, length: int | None = None) -> np.ndarray:
    length = length or self.history_length + 1
    padded = np.zeros((length,) + values.shape[1:], np.int64)
    padded[:len(values)] = values
    return padded


def seminar_scorers(retriever: seminar.SeminarRetriever, data: SeminarData,
                     num_items: int, mode=seminar.ScoringMode.EXACT,
                     users_per_call: int = 32):
  """`score_items` and `score_all` over the evaluation histories."""
  # Per-user candidates `[B, C]` and the shared catalogue `[N]` trace
  # separately (ranks differ).
  score_per_user = tf.function(retriever.score)
  score_catalogue = tf.function(retriever.score)

  def score_items(split, items):
    history, keywords = data.histories[split]
    return np.concatenate([
        score_per_user(history[start:start + 512],
                       keywords[start:start + 512],
                       tf.constant(items[start:start + 512]), mode).numpy()
        for start in range(0, len(items), 512)])

  def score_all(split, users):
    history, keywords = data.histories[split]
    catalogue = tf.range(num_items, dtype=tf.int64)
    return np.concatenate([
        score_catalogue(history[users[start:start + users_per_call]],
                        keywords[users[start:start + users_per_call]],
                        catalogue, mode).numpy()
        for start in range(0, len(users), users_per_call)])

  return score_items, score_all


def build_seminar_models(dataset: datasets.SequenceDataset,
                         config: seminar.SeminarConfig,
                         popularity_prior: bool):
  """The PSU and the retriever; with `popularity_prior`, the retriever's
  item bias starts at log train frequency
  (`SeminarRetriever.start_item_bias_at_popularity`)."""
  pretrainer, retriever = seminar_psu.build_seminar(
      dataset.item_tokens, len(dataset.token_names), config)
  if popularity_prior:
    retriever.start_item_bias_at_popularity(dataset.train_counts())
  return pretrainer, retriever
