"""Turns a contract `Dataset` into per-interaction training and eval rows.

Each row is one positive interaction (label >= 0.5) with the user's earlier
positives as history: their item ids and, aligned with them, the search
queries that led to them ("" where there was none). Exact duplicates (same
user, item and timestamp) count once. The split is by time, never random, and
follows one of two rules:

- `leave_last_out` (per user): for every user with more than `eval_holdout`
  positives, the newest `eval_holdout` positives are the eval split and
  everything before them is the train split. Users with too few positives
  stay entirely in train. Other users' later interactions are in train, so a
  model can learn from a future the eval user has not reached yet.
- `temporal` (global): one cut time for everybody, the `cut_quantile` of the
  positives' timestamps. Train is every positive before the cut; eval is each
  user's first positive at or after it, for users with at least one train
  positive (a user first seen after the cut has nothing to retrieve from).
  Later positives are in neither split. This is what a team that retrains
  nightly and serves tomorrow sees.

Every eval row also lists all the user's train items (`SEEN_ITEM_IDS`), which
evaluation never recommends back.

Slice buckets (user activity, item popularity) are computed from the train
split only, so that the eval split does not leak into them.

How the work is cut, so that one log can be processed in memory here
(`build_rows`) or by a Beam pipeline over many workers
(`tfx_pipeline.components.interaction_example_beam`) with identical output,
one module a step:

1. Per user (`data.user_sequences`): the user's positive events become a
   `UserSequence` (deduplicated, in time order, file order among same-second
   events) and then get their split boundary (`split_sequence`). This is the
   one per-user sequence representation both paths share; only one user's
   history is ever in memory at once.
2. Global passes over small counts (`data.global_passes`): the temporal cut
   from per-timestamp counts, the activity terciles from a histogram of train
   counts, popularity buckets and the negative sampler from per-item train
   counts, the eval user sample from the users' seeded keys (`GlobalStats`).
3. Per user again (`data.example_rows`): `finish_user_examples` writes the
   user's stored examples (one train example holding every train positive
   once, and the eval rows) with buckets, CTR negatives (drawn from an RNG
   seeded by the seed and the user, so no global draw order exists) and the
   eval user sample applied. `build_rows` returns the train split as the
   per-interaction rows the train example stands for (`train_rows`), which
   is what the Trainer rebuilds from it.
"""

from __future__ import annotations

import collections
import dataclasses

from data import example_rows
from data import features
from data import global_passes
from data import user_sequences


@dataclasses.dataclass(frozen=True)
class SplitRows:
  """Rows of both splits as lists of raw feature dicts."""
  train: list[dict]
  eval: list[dict]


def check_arguments(split: str, eval_holdout: int, history_length: int) -> None:
  """Raises `ValueError` on an argument out of range."""
  if split not in user_sequences.SPLIT_RULES:
    raise ValueError(f"unknown split {split!r}; use one of "
                     f"{user_sequences.SPLIT_RULES}")
  if eval_holdout < 1:
    raise ValueError(f"eval_holdout must be >= 1, got {eval_holdout}")
  if not 0 < history_length <= features.HISTORY_LENGTH:
    raise ValueError(f"history_length must be in [1, {features.HISTORY_LENGTH}],"
                     f" got {history_length}")


def build_rows(dataset, history_length: int = features.HISTORY_LENGTH,
               **options) -> SplitRows:
  """The per-interaction train and eval rows of a dataset, in memory.

  The stored examples of `build_examples` with each train example expanded
  into the rows it stands for (`example_rows.train_rows`): one per train
  positive with its newest `history_length` earlier positives as history,
  each followed by its CTR negatives. Users come in id order.

  Args:
    dataset: a validated `data.contract.Dataset`.
    history_length: cap on the history, keeping the most recent items.
    **options: the other arguments of `build_examples`.

  Returns:
    The rows of both splits.
  """
  stored, stats = _stored_examples(dataset, history_length=history_length,
                                   **options)
  return SplitRows(
      train=[row for example in stored.train
             for row in example_rows.train_rows(example, history_length,
                                                stats)],
      eval=stored.eval)


def build_examples(dataset, **options) -> SplitRows:
  """The examples InteractionExampleGen stores, in memory.

  One train example per user with train positives, holding each of them
  once, and the eval rows (`example_rows.finish_user_examples`). Users come
  in id order.

  Args:
    dataset: a validated `data.contract.Dataset`.
    **options: the options of `_stored_examples`.

  Returns:
    The examples of both splits.
  """
  return _stored_examples(dataset, **options)[0]


def _stored_examples(dataset, eval_holdout: int = 1,
                     history_length: int = features.HISTORY_LENGTH,
                     ctr_negatives: int = 0, negative_seed: int = 0,
                     split: str = user_sequences.LEAVE_LAST_OUT,
                     temporal_cut_quantile: float = 0.9,
                     eval_max_users: int = 0
                     ) -> tuple[SplitRows, global_passes.GlobalStats]:
  """The stored examples of a dataset and the global stats they used.

  Args:
    dataset: a validated `data.contract.Dataset`.
    eval_holdout: under `leave_last_out`, how many of each user's newest
      positives go to eval.
    history_length: cap on the history, keeping the most recent items.
    ctr_negatives: sampled label-0 rows per positive row, in both splits,
      for CTR ranking families; 0 = positives only.
    negative_seed: seed of the negative sampling and of the eval user sample.
    split: `leave_last_out` or `temporal` (see the module docstring).
    temporal_cut_quantile: under `temporal`, the quantile of the positives'
      timestamps where train ends.
    eval_max_users: if > 0, keep the eval rows of at most this many users, a
      seeded sample (`eval_user_key`); train is unchanged.

  Returns:
    `(examples of both splits, global stats)`.

  Raises:
    ValueError: if the dataset has no positive interaction, or the split
      leaves the eval split empty, or an argument is out of range.
  """
  check_arguments(split, eval_holdout, history_length)
  events = user_sequences.positive_events_by_user(
      dataset.interactions.reset_index(drop=True))
  if not events:
    raise ValueError("the interaction log has no positive interaction "
                     f"(label >= {user_sequences.POSITIVE_THRESHOLD}); "
                     "nothing to train on")
  sequences = [user_sequences.user_sequence(user_id, events[user_id])
               for user_id in sorted(events)]
  rule = user_sequences.SplitRule(split, eval_holdout,
                                  cut_quantile=temporal_cut_quantile)
  if split == user_sequences.TEMPORAL:
    rule = dataclasses.replace(rule, cut=global_passes.temporal_cut_from_counts(
        collections.Counter(t for s in sequences for t in s.timestamps),
        temporal_cut_quantile))
  sequences = [user_sequences.split_sequence(sequence, rule)
               for sequence in sequences]
  eval_users = [s.user_id for s in sequences if s.n_eval]
  global_passes.check_eval_not_empty(len(eval_users), rule)

  item_stats = {}
  for sequence in sequences:
    for item_id, stats in global_passes.item_train_stats(sequence).items():
      item_stats[item_id] = (
          global_passes.merge_item_stats(item_stats[item_id], stats)
          if item_id in item_stats else stats)
  stats = global_passes.global_stats(
      collections.Counter(s.n_train for s in sequences if s.n_train),
      item_stats,
      global_passes.eval_user_sample(
          (global_passes.eval_user_key(user, negative_seed)
           for user in eval_users), eval_max_users))
  side_info = example_rows.item_side_info(dataset.items)
  stored = SplitRows(train=[], eval=[])
  for sequence in sequences:
    for split_name, example in example_rows.finish_user_examples(
        sequence, stats, history_length, side_info, ctr_negatives,
        negative_seed):
      (stored.train if split_name == user_sequences.TRAIN
       else stored.eval).append(example)
  return stored, stats
