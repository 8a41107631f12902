"""A `SequenceDataset` as in-memory inputs of the retrieval model families.

The families (`models.retrieval.two_tower`, `models.retrieval.sasrec`, `models.retrieval.guim`) read the
pipeline's transformed feature names; this module lays a leave-one-out
dataset out under those names, so that offline experiments train the
product's models unchanged. The offline data has no request time, so the
time-context features are 0. It also lays out each history position's event
type (`features.HISTORY_EVENT_INDICES`), which the pipeline does not produce
yet: GUIM reads it when configured with `num_event_types`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from data import features
from models.retrieval import two_tower
from offline_eval import datasets


def query_features(user_indices: np.ndarray, histories: np.ndarray,
                   event_histories: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
  """Query-tower inputs of users with the given `[n, L]` histories and,
  if given, the aligned `[n, L]` event types."""
  zeros = np.zeros(len(user_indices), np.int64)
  events = {} if event_histories is None else {
      features.HISTORY_EVENT_INDICES: event_histories}
  return {**events,
      # User index 0 is padding, as in the pipeline.
      features.USER_INDEX: user_indices + 1,
      features.HISTORY_ITEM_INDICES: histories,
      features.HOUR_OF_DAY: zeros,
      features.DAY_OF_WEEK: zeros,
      features.TIMESTAMP_Z: zeros.astype(np.float32),
  }


@dataclasses.dataclass(frozen=True)
class RetrievalInputs:
  """What a retrieval family is built and trained with.

  Attributes:
    vocab: vocabulary sizes, with rows for padding and out-of-vocabulary.
    catalogue: candidate-tower inputs of every item index.
    sampling_probability: each item's share of train interactions.
    examples: one (query features, next item's candidate features) example
      per train interaction, oldest first per user.
    num_event_types: event types with a row for none (index 0); 0 when the
      dataset has no event types indexed.
  """
  vocab: two_tower.VocabularySizes
  catalogue: Mapping[str, np.ndarray]
  sampling_probability: np.ndarray
  examples: Mapping[str, np.ndarray]
  num_event_types: int = 0

  @classmethod
  def from_dataset(cls, dataset: datasets.SequenceDataset,
                   history_length: int) -> "RetrievalInputs":
    """Lays out `dataset`'s train split; histories keep `history_length`."""
    catalogue = dataset.candidate_features()
    users, histories, targets = dataset.next_item_examples(history_length)
    has_events = dataset.train_events is not None
    examples = query_features(
        users, histories,
        dataset.next_item_event_histories(history_length) if has_events
        else None)
    examples.update({name: values[targets]
                     for name, values in catalogue.items()})
    vocab = two_tower.VocabularySizes(
        users=dataset.num_users + 2, items=dataset.num_items + 1,
        title_tokens=len(dataset.token_names) + 1,
        categories=len(dataset.category_names) + 1)
    return cls(vocab=vocab, catalogue=catalogue,
               sampling_probability=dataset.train_sampling_probability(),
               examples=examples,
               num_event_types=len(dataset.event_names) if has_events else 0)


def user_queries(dataset: datasets.SequenceDataset, history_length: int,
                 include_valid: bool) -> dict[str, np.ndarray]:
  """Every user's query features, in user-index order.

  Args:
    dataset: the leave-one-out dataset.
    history_length: most recent items kept per history.
    include_valid: append the validation target to the history (the input
      for predicting the test target) or not (for the validation target).

  Returns:
    The query-tower inputs of all users.
  """
  events = None
  if dataset.train_events is not None:
    events = dataset.padded_event_history(history_length, include_valid)
  return query_features(np.arange(dataset.num_users, dtype=np.int64),
                        dataset.padded_history(history_length, include_valid),
                        events)
