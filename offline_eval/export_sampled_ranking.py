"""The sampled 1 + N protocol on a retrieval model the pipeline exported.

Papers on sequential recommendation (SASRec, ReChorus) report HR@10 and
NDCG@10 of each user's held-out item ranked against N items drawn uniformly
from those the user never interacted with (`protocols.sampled_ranking`; 100
in SASRec's paper). The pipeline's own protocol ranks the whole catalogue;
this module scores the same export on the sampled one, so that its numbers
can be set beside published ones:

- each eval example's query is the export's `query_embedding` of its raw
  user id, history and request time;
- its target and N negatives are the export's `candidate_embedding` of their
  raw id, title and categories, as they appear in the examples;
- a score is their dot product (for a K-vector query the max over the K:
  `catalogue_scoring.score_items`), the served score.

The negatives are drawn, with a fixed seed, among the items that appear in
the examples (as targets or in histories) and that the user never had: no
train or eval target, no history item. Ties count against the target.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from data import features
from models import serving_names
from offline_eval import protocols

# Rows per call of a signature.
_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class RawExamples:
  """Raw (ExampleGen) examples, as numpy columns.

  Attributes:
    user_ids: `[n]` bytes.
    histories: `[n, longest history]` bytes, padded with b"" (which the
      export reads as absent).
    timestamps: `[n]` int64.
    item_ids: `[n]` the target item of each example.
    titles: `[n]` the target's title.
    categories: `[n, most categories]` bytes, padded with b"".
  """
  user_ids: np.ndarray
  histories: np.ndarray
  timestamps: np.ndarray
  item_ids: np.ndarray
  titles: np.ndarray
  categories: np.ndarray


def _padded(rows: Sequence[Sequence[bytes]]) -> np.ndarray:
  width = max((len(row) for row in rows), default=0)
  out = np.full((len(rows), max(width, 1)), b"", dtype=object)
  for index, row in enumerate(rows):
    out[index, :len(row)] = row
  return out


def read_examples(serialized: Iterable[bytes]) -> RawExamples:
  """Parses serialized raw tf.Examples of the retrieval families.

  An eval example is one row. A train example (one per user) gives one row
  per train positive, each with its own title and categories and no
  history: the rows name every item of the history.
  """
  columns = {name: [] for name in ("user", "history", "time", "item", "title",
                                   "categories")}
  separator = features.CATEGORY_SEPARATOR.encode()
  for record in serialized:
    feature = tf.train.Example.FromString(record).features.feature
    def values(name):
      kind = feature[name].WhichOneof("kind")
      return list(getattr(feature[name], kind).value) if kind else []
    user = values(features.USER_ID)[0]
    own_times = values(features.HISTORY_TIMESTAMPS)
    history = values(features.HISTORY_ITEM_IDS)
    for item, time, title, joined in zip(
        history, own_times, values(features.HISTORY_ITEM_TITLES),
        values(features.HISTORY_ITEM_CATEGORIES)):
      for name, value in (("user", user), ("history", []), ("time", time),
                          ("item", item), ("title", title),
                          ("categories", [c for c in joined.split(separator)
                                          if c])):
        columns[name].append(value)
    titles = values(features.ITEM_TITLE)
    for name, value in (
        ("user", user), ("history", history[len(own_times):]),
        ("time", values(features.TIMESTAMP)[0]),
        ("item", values(features.ITEM_ID)[0]),
        ("title", titles[0] if titles else b""),
        ("categories", values(features.ITEM_CATEGORIES))):
      columns[name].append(value)
  return RawExamples(
      user_ids=np.array(columns["user"], dtype=object),
      histories=_padded(columns["history"]),
      timestamps=np.array(columns["time"], dtype=np.int64),
      item_ids=np.array(columns["item"], dtype=object),
      titles=np.array(columns["title"], dtype=object),
      categories=_padded(columns["categories"]))


def _embed(signature, inputs: dict[str, np.ndarray]) -> np.ndarray:
  size = len(next(iter(inputs.values())))
  return np.concatenate([
      signature(**{name: tf.constant(values[start:start + _BATCH])
                   for name, values in inputs.items()})[
                       serving_names.EMBEDDING].numpy()
      for start in range(0, size, _BATCH)])


def _catalogue(train: RawExamples, evaluation: RawExamples
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every item the examples name, with its title and categories.

  An item only ever seen in histories has no title or categories there; it
  is embedded with none, as a client that knows only its id would send it.
  """
  titles, categories = {}, {}
  for examples in (train, evaluation):
    for item, title, row in zip(examples.item_ids, examples.titles,
                                examples.categories):
      titles.setdefault(item, title)
      categories.setdefault(item, [value for value in row if value])
    for history in examples.histories:
      for item in history:
        if item:
          titles.setdefault(item, b"")
          categories.setdefault(item, [])
  ids = np.array(sorted(titles), dtype=object)
  return (ids, np.array([titles[item] for item in ids], dtype=object),
          _padded([categories[item] for item in ids]))


def _interacted(train: RawExamples, evaluation: RawExamples,
                index: dict[bytes, int]) -> list[np.ndarray]:
  """Each eval example's user's items: every target and history item."""
  items: dict[bytes, set[int]] = {}
  for examples in (train, evaluation):
    for user, item, history in zip(examples.user_ids, examples.item_ids,
                                   examples.histories):
      items.setdefault(user, set()).update(
          [index[item]] + [index[value] for value in history if value])
  return [np.array(sorted(items[user]), dtype=np.int64)
          for user in evaluation.user_ids]


def evaluate(serving_dir: str, train: RawExamples, evaluation: RawExamples,
             num_negatives: int = 100, seed: int = 0,
             ks: Sequence[int] = (10,)) -> dict[str, float]:
  """HR@k, NDCG@k and MRR of the export's eval targets against N negatives.

  Args:
    serving_dir: a retrieval family's SavedModel.
    train: the train split's raw examples (for the users' items).
    evaluation: the eval split's raw examples, one target each.
    num_negatives: N, negatives per eval example.
    seed: the negatives' seed.
    ks: cut-offs.

  Returns:
    `protocols.sampled_ranking`'s metrics.
  """
  signatures = tf.saved_model.load(serving_dir).signatures
  item_ids, titles, categories = _catalogue(train, evaluation)
  index = {item: position for position, item in enumerate(item_ids)}
  items = _embed(signatures[serving_names.CANDIDATE_EMBEDDING],
                 {features.ITEM_ID: item_ids, features.ITEM_TITLE: titles,
                  features.ITEM_CATEGORIES: categories})
  queries = _embed(signatures[serving_names.QUERY_EMBEDDING],
                   {features.USER_ID: evaluation.user_ids,
                    features.HISTORY_ITEM_IDS: evaluation.histories,
                    features.TIMESTAMP: evaluation.timestamps})
  negatives = protocols.sample_negatives(
      len(item_ids), _interacted(train, evaluation, index), num_negatives,
      seed)
  targets = np.array([index[item] for item in evaluation.item_ids])
  candidates = np.concatenate([targets[:, None], negatives], axis=1)
  scores = np.concatenate([
      _scores(queries[start:start + _BATCH], items[candidates[
          start:start + _BATCH]]) for start in range(0, len(targets), _BATCH)])
  return protocols.sampled_ranking(scores[:, 0], scores[:, 1:], ks)


def _scores(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
  """`[b, dim]` or `[b, K, dim]` queries x `[b, C, dim]` -> `[b, C]`."""
  if queries.ndim == 3:
    return np.einsum("bkd,bcd->bkc", queries, candidates).max(axis=1)
  return np.einsum("bd,bcd->bc", queries, candidates)
