"""Probe tasks on frozen user and item embeddings: a GLUE-like benchmark.

Any model that embeds users (one or K vectors each) and items can be scored:
light probes (standardised logistic regression, `offline_eval.linear_probes`)
are trained on the frozen embeddings of a seeded train part of the users,
items or pairs and evaluated on the rest; retrieval tasks score items by the best user vector. Tasks are
declared as `TaskSpec`s, so another dataset declares its own list; the kinds
are the keys of `TASK_KINDS`:

- `next_item`: full-ranking Recall@k of each user's held-out next item, known
  items excluded (`offline_eval.protocols.full_ranking`).
- `next_category`: Recall@k of the next item's category (its first label)
  when the categories are ranked by their best-scored item (no probe).
- `sampled_ranking`: the target against sampled negatives the user never
  interacted with, HR@k/NDCG@k (ReChorus' protocol).
- `user_binary_auc`: a binary user attribute, AUC of a logistic probe.
- `user_class_f1`: a categorical user attribute (optionally bucketed by
  `bins`), F1 of a multinomial logistic probe.
- `item_class_f1`: one label per item, F1 of a multinomial logistic probe;
  optionally on the labels with at least `min_items` items and a seeded
  sample of at most `max_items` items.
- `item_multilabel_f1`: several labels per item, one logistic probe per
  label, F1 of the predicted label sets.
- `interaction_auc`: the label of a held-out (user, item) pair from
  `[u, i, u * i]`, where `u` is the user vector closest to the item; split by
  user, so a test user is never seen by the probe. The pairs must be ones no
  model trained on (else the probe measures memorisation): a pair whose item
  is among the user's `known_items` is refused.
- `conversion_auc`: `interaction_auc` on the (user, viewed item) pairs of the
  held-out events, labelled by whether the user converted (bought) on the
  item (`offline_eval.behaviour_pairs.conversion_pairs`): purchase
  propensity.
- `relation_auc`: whether two items are related (e.g. complements), from
  `[a * b, |a - b|]`, against as many random item pairs. The embedded items'
  features must not be built from the relation probed (see
  `offline_eval.datasets.without_relation_tokens`).
- `neighbour_coherence`: share of an item's k nearest items (cosine) that
  share at least one label with it. No probe, no seed.

A K-vector user enters the user-attribute probes as the mean or the
concatenation of its vectors (`user_pooling`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from offline_eval import behaviour_pairs
from offline_eval import linear_probes
from offline_eval import protocols

USER_POOLINGS = ("mean", "concat")
ScoreFn = Callable[[np.ndarray], np.ndarray]

# Task declarations shared by the benchmark script and the pipeline component.
NEXT_ITEM_TASK = {"name": "next_item_recall@50", "kind": "next_item", "k": 50}
RECHORUS_TASK = {"name": "rechorus", "kind": "sampled_ranking",
                 "num_negatives": 99, "ks": [5]}
MOVIELENS_TASKS = [
    NEXT_ITEM_TASK,
    {"name": "gender_auc", "kind": "user_binary_auc", "attribute": "gender",
     "positive": "F"},
    # MovieLens-1M's age groups.
    {"name": "age_bucket_macro_f1", "kind": "user_class_f1",
     "attribute": "age", "bins": [18, 25, 35, 45, 50, 56]},
    {"name": "occupation_macro_f1", "kind": "user_class_f1",
     "attribute": "occupation"},
    {"name": "genre_micro_f1", "kind": "item_multilabel_f1"},
    {"name": "held_out_rating>=4_auc", "kind": "interaction_auc"},
    {"name": "genre_coherence@10", "kind": "neighbour_coherence", "k": 10},
]
GROCERY_TASKS = [
    NEXT_ITEM_TASK,
    {"name": "category_macro_f1", "kind": "item_class_f1"},
    {"name": "category_coherence@10", "kind": "neighbour_coherence", "k": 10},
    {"name": "complement_auc", "kind": "relation_auc", "relation": "complement"},
    {"name": "substitute_auc", "kind": "relation_auc", "relation": "substitute"},
    RECHORUS_TASK,
]
# The relation of items touched one after the other in a held-out session
# (`behaviour_pairs.session_pairs`).
SAME_SESSION_RELATION = "same_session"
TAOBAO_TASKS = [
    NEXT_ITEM_TASK,
    # 2,914 categories, each ranked by its best-scored item.
    {"name": "next_category_recall@10", "kind": "next_category", "k": 10},
    {"name": "purchase_auc", "kind": "conversion_auc",
     "view_event": behaviour_pairs.VIEW_EVENT,
     "conversion_event": behaviour_pairs.BUY_EVENT},
    # The 91 categories with 100+ items; a seeded 5,000 of their items keep
    # the multinomial probe to seconds.
    {"name": "category_macro_f1", "kind": "item_class_f1", "min_items": 100,
     "max_items": 5000},
    {"name": "same_session_auc", "kind": "relation_auc",
     "relation": SAME_SESSION_RELATION, "catalogue_negatives": True},
]
HM_TASKS = [
    NEXT_ITEM_TASK,
    # 17-79, median 31; buckets of about ten years.
    {"name": "age_bucket_macro_f1", "kind": "user_class_f1",
     "attribute": "age", "bins": [25, 35, 45, 55]},
    # 103 of the 1,356 customers with a status are PRE-CREATE, the rest
    # ACTIVE.
    {"name": "club_pre_create_auc", "kind": "user_binary_auc",
     "attribute": "club_member_status", "positive": "PRE-CREATE"},
    # The first category of the articles with metadata: the index group
    # (Ladieswear, Menswear, Divided, Baby/Children, Sport).
    {"name": "index_group_macro_f1", "kind": "item_class_f1"},
    # Purchases carry a date only: articles one customer bought on one day
    # of the held-out days.
    {"name": "same_day_auc", "kind": "relation_auc",
     "relation": SAME_SESSION_RELATION, "catalogue_negatives": True},
]
# The benchmarks' tasks for the datasets the importers provide.
DATASET_TASKS: dict[str, list[dict]] = {
    "movielens-100k": MOVIELENS_TASKS,
    "amazon-grocery": GROCERY_TASKS,
    "taobao-userbehavior-sample": TAOBAO_TASKS,
    "hm-fashion": HM_TASKS,
}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One benchmark task.

  Attributes:
    name: the metric's name in the report.
    kind: a key of `TASK_KINDS`.
    params: kind-specific parameters (see each `_task_*` function).
  """
  name: str
  kind: str
  params: Mapping[str, object] = dataclasses.field(default_factory=dict)

  @classmethod
  def from_dict(cls, values: Mapping[str, object]) -> "TaskSpec":
    values = dict(values)
    name, kind = values.pop("name"), values.pop("kind")
    if kind not in TASK_KINDS:
      raise ValueError(f"unknown task kind {kind!r}; known: {sorted(TASK_KINDS)}")
    return cls(name=str(name), kind=str(kind), params=values)


@dataclasses.dataclass
class TaskData:
  """What the tasks are about; fixed across the models compared.

  Attributes:
    next_items: `[U]` each user's held-out next item index, -1 for none.
    known_items: per user, item indices never recommended (the history).
    interacted: per user, every item index they interacted with (for
      sampling negatives); defaults to `known_items` plus `next_items`.
    user_attributes: one row per user index; attribute columns.
    item_labels: `[num_items, C]` label indices per item, 0 = padding.
    interactions: columns `user_index`, `item_index`, `label` (0/1), of
      pairs no model trained on.
    item_relations: relation name -> `[n, 2]` related item index pairs.
    first_item: smallest real item index (1 when index 0 is padding).
    catalogue: `[num_items]` whether each item index had a train positive:
      the items `next_item` ranks among, as the pipeline's `evaluate` does
      (`protocols.full_ranking`); None for every item.
    held_out_events: events no model trained on, columns
      `behaviour_pairs.EVENT_COLUMNS` (for `conversion_auc`).
  """
  next_items: np.ndarray | None = None
  known_items: Sequence[np.ndarray] | None = None
  interacted: Sequence[np.ndarray] | None = None
  user_attributes: pd.DataFrame | None = None
  item_labels: np.ndarray | None = None
  interactions: pd.DataFrame | None = None
  item_relations: Mapping[str, np.ndarray] = dataclasses.field(
      default_factory=dict)
  first_item: int = 1
  catalogue: np.ndarray | None = None
  held_out_events: pd.DataFrame | None = None


@dataclasses.dataclass(frozen=True)
class Embeddings:
  """Frozen embeddings of one model.

  Attributes:
    users: `[U, K, D]` user vectors (K = 1 for single-vector models).
    items: `[num_items, D]` item vectors, by item index.
  """
  users: np.ndarray
  items: np.ndarray

  def __post_init__(self):
    if self.users.ndim != 3 or self.items.ndim != 2:
      raise ValueError("users must be [U, K, D] and items [num_items, D], got "
                       f"{self.users.shape} and {self.items.shape}")

  def scores(self, user_indices: np.ndarray) -> np.ndarray:
    """`[n, num_items]` max over each user's vectors of the dot product."""
    return np.einsum("ukd,nd->ukn", self.users[user_indices],
                     self.items).max(axis=1)


def pooled_users(embeddings: Embeddings, pooling: str) -> np.ndarray:
  """`[U, D]` (mean) or `[U, K * D]` (concat) user features."""
  if pooling == "mean":
    return embeddings.users.mean(axis=1)
  if pooling == "concat":
    return embeddings.users.reshape(len(embeddings.users), -1)
  raise ValueError(f"user_pooling must be one of {USER_POOLINGS}, got {pooling!r}")


def _next_item_recall(spec: TaskSpec, data: TaskData, score_fn: ScoreFn
                      ) -> float:
  k = int(spec.params.get("k", 50))
  users = np.flatnonzero(data.next_items >= 0)
  result = protocols.full_ranking(
      score_fn, users, [data.next_items[u:u + 1] for u in users],
      exclude=[data.known_items[u] for u in users], ks=(k,),
      catalogue=data.catalogue)
  return result[f"recall@{k}"]


def _next_category_recall(spec: TaskSpec, data: TaskData, score_fn: ScoreFn
                          ) -> float:
  """Share of users whose next item's category ranks in the top `k`.

  A category scores its best-scored catalogue item; the user's known items
  are not excluded (users return to categories). Ties count against the
  target; a target category without a catalogue item is a miss.
  """
  k = int(spec.params.get("k", 10))
  category = data.item_labels[:, 0].copy()
  category[:data.first_item] = 0
  users = np.flatnonzero(data.next_items >= 0)
  users = users[category[data.next_items[users]] > 0]
  ranked = category > 0
  if data.catalogue is not None:
    ranked &= data.catalogue
  ranked_items = np.flatnonzero(ranked)
  order = ranked_items[np.argsort(category[ranked_items], kind="stable")]
  names, starts = np.unique(category[order], return_index=True)
  hits = 0
  for start in range(0, len(users), 256):
    chunk = users[start:start + 256]
    best = np.maximum.reduceat(score_fn(chunk)[:, order], starts, axis=1)
    targets = category[data.next_items[chunk]]
    column = np.minimum(np.searchsorted(names, targets), len(names) - 1)
    present = names[column] == targets
    target_scores = best[np.arange(len(chunk)), column]
    rank = (best >= target_scores[:, None]).sum(axis=1) - 1
    hits += int(((rank < k) & present).sum())
  return hits / max(len(users), 1)


def _task_next_category(spec: TaskSpec, data: TaskData,
                        embeddings: Embeddings, seed: int,
                        user_pooling: str) -> float:
  """Params: `k` (default 10)."""
  del seed, user_pooling  # A full ranking of categories has no sampling.
  return _next_category_recall(spec, data, embeddings.scores)


def _sampled_ranking(spec: TaskSpec, data: TaskData, score_fn: ScoreFn,
                     num_items: int, seed: int) -> dict[str, float]:
  users = np.flatnonzero(data.next_items >= 0)
  negatives = _sample_task_negatives(spec, data, users, num_items, seed)
  return _sampled_ranking_of(spec, score_fn, data.next_items[users], users,
                             negatives)


def _task_next_item(spec: TaskSpec, data: TaskData, embeddings: Embeddings,
                    seed: int, user_pooling: str) -> float:
  """Params: `k` (default 50)."""
  del seed, user_pooling  # Full ranking has no sampling.
  return _next_item_recall(spec, data, embeddings.scores)


def _task_sampled_ranking(spec: TaskSpec, data: TaskData,
                          embeddings: Embeddings, seed: int,
                          user_pooling: str) -> dict[str, float]:
  """Params: `num_negatives` (99), `ks` ([5]). Returns hr@k and ndcg@k."""
  del user_pooling
  return _sampled_ranking(spec, data, embeddings.scores,
                          len(embeddings.items), seed)


def run_ranking_tasks(specs: Sequence[TaskSpec], data: TaskData,
                      score_fn: ScoreFn, num_items: int,
                      seed: int) -> dict[str, float]:
  """The ranking tasks of `specs` for any scorer, e.g. popularity.

  Args:
    specs: tasks; only `next_item`, `next_category` and `sampled_ranking`
      ones are run.
    data: the task targets.
    score_fn: `user_indices -> [n, num_items]` scores.
    num_items: number of item indices.
    seed: the negative-sampling seed.

  Returns:
    The metrics, named as `run_tasks` names them.
  """
  results: dict[str, float] = {}
  for spec in specs:
    if spec.kind == "next_item":
      results[spec.name] = _next_item_recall(spec, data, score_fn)
    elif spec.kind == "next_category":
      results[spec.name] = _next_category_recall(spec, data, score_fn)
    elif spec.kind == "sampled_ranking":
      results.update({f"{spec.name}/{metric}": value for metric, value in
                      _sampled_ranking(spec, data, score_fn, num_items,
                                       seed).items()})
  return results


def _sample_task_negatives(spec: TaskSpec, data: TaskData, users: np.ndarray,
                           num_items: int, seed: int) -> np.ndarray:
  """`[len(users), num_negatives]` negatives of a `sampled_ranking` task."""
  interacted = data.interacted
  if interacted is None:
    interacted = [np.append(data.known_items[u], data.next_items[u])
                  for u in range(len(data.next_items))]
  return protocols.sample_negatives(
      num_items, [interacted[u] for u in users],
      num_negatives=int(spec.params.get("num_negatives", 99)), seed=seed,
      low=data.first_item)


def _sampled_ranking_of(spec: TaskSpec, score_fn: ScoreFn,
                        targets: np.ndarray, users: np.ndarray,
                        negatives: np.ndarray) -> dict[str, float]:
  """Sampled-ranking metrics of any `users -> [n, num_items]` scorer."""
  ks = tuple(int(k) for k in spec.params.get("ks", (5,)))
  positive_scores = np.empty(len(users))
  negative_scores = np.empty(negatives.shape)
  for start in range(0, len(users), 1024):
    chunk = slice(start, start + 1024)
    scores = score_fn(users[chunk])
    rows = np.arange(len(scores))
    positive_scores[chunk] = scores[rows, targets[chunk]]
    negative_scores[chunk] = np.take_along_axis(scores, negatives[chunk], axis=1)
  result = protocols.sampled_ranking(positive_scores, negative_scores, ks=ks)
  return {name: result[name] for k in ks for name in (f"hr@{k}", f"ndcg@{k}")}


def _user_labels(spec: TaskSpec, data: TaskData) -> tuple[np.ndarray, np.ndarray]:
  """(user indices with a value, their labels) of `spec.params["attribute"]`."""
  column = data.user_attributes[str(spec.params["attribute"])]
  known = column.notna() & (column.astype(str) != "")
  values = column[known]
  if "bins" in spec.params:
    values = np.digitize(values.astype(float), np.asarray(spec.params["bins"]))
  return np.flatnonzero(known.to_numpy()), np.asarray(values)


def _task_user_binary_auc(spec: TaskSpec, data: TaskData,
                          embeddings: Embeddings, seed: int,
                          user_pooling: str) -> float:
  """Params: `attribute`, `positive` (the value counted as 1), `test_fraction`."""
  users, values = _user_labels(spec, data)
  labels = (values.astype(str) == str(spec.params["positive"])).astype(int)
  train, test = linear_probes.split(
      len(users), float(spec.params.get("test_fraction", 0.3)), seed)
  return linear_probes.binary_auc(
      pooled_users(embeddings, user_pooling)[users], labels, train, test, seed)


def _task_user_class_f1(spec: TaskSpec, data: TaskData, embeddings: Embeddings,
                        seed: int, user_pooling: str) -> float:
  """Params: `attribute`, optional `bins`, `average` (macro), `test_fraction`."""
  users, values = _user_labels(spec, data)
  return linear_probes.class_f1(
      pooled_users(embeddings, user_pooling)[users], values.astype(str), seed,
      float(spec.params.get("test_fraction", 0.3)),
      str(spec.params.get("average", "macro")))


def _labelled_items(data: TaskData) -> np.ndarray:
  has_label = (data.item_labels > 0).any(axis=1)
  has_label[:data.first_item] = False
  return np.flatnonzero(has_label)


def _task_item_class_f1(spec: TaskSpec, data: TaskData, embeddings: Embeddings,
                        seed: int, user_pooling: str) -> float:
  """Params: `average` (macro), `test_fraction`, `min_items` (1),
  `max_items` (all); the first label per item."""
  del user_pooling
  items = _labelled_items(data)
  labels = data.item_labels[items, 0]
  items = items[np.bincount(labels)[labels] >=
                int(spec.params.get("min_items", 1))]
  max_items = spec.params.get("max_items")
  if max_items is not None and len(items) > int(max_items):
    items = np.sort(np.random.default_rng(seed).choice(
        items, int(max_items), replace=False))
  return linear_probes.class_f1(
      embeddings.items[items], data.item_labels[items, 0], seed,
      float(spec.params.get("test_fraction", 0.3)),
      str(spec.params.get("average", "macro")))


def _label_matrix(data: TaskData, items: np.ndarray) -> np.ndarray:
  """`[len(items), num_labels]` 0/1 matrix; label index 0 is padding."""
  num_labels = int(data.item_labels.max()) + 1
  matrix = np.zeros((len(items), num_labels), dtype=int)
  rows = np.repeat(np.arange(len(items)), data.item_labels.shape[1])
  matrix[rows, data.item_labels[items].reshape(-1)] = 1
  return matrix[:, 1:]


def _task_item_multilabel_f1(spec: TaskSpec, data: TaskData,
                             embeddings: Embeddings, seed: int,
                             user_pooling: str) -> float:
  """Params: `average` (micro), `test_fraction`; one probe per label."""
  del user_pooling
  items = _labelled_items(data)
  labels = _label_matrix(data, items).astype(bool)
  train, test = linear_probes.split(
      len(items), float(spec.params.get("test_fraction", 0.3)), seed)
  return linear_probes.multilabel_f1_probe(
      embeddings.items[items], labels, train, test, seed,
      str(spec.params.get("average", "micro")))


def _closest_user_vectors(users: np.ndarray, items: np.ndarray) -> np.ndarray:
  """`[n, D]`: for each (K user vectors, item) row, the vector closest to it."""
  best = np.einsum("nkd,nd->nk", users, items).argmax(axis=1)
  return users[np.arange(len(users)), best]


def _refuse_known_pairs(data: TaskData, users: np.ndarray,
                        items: np.ndarray) -> None:
  """Raises ValueError when a probe pair is in its user's `known_items`."""
  if data.known_items is None:
    return
  known = {(int(user), int(item)) for user in np.unique(users)
           for item in data.known_items[user]}
  trained = sum((int(user), int(item)) in known
                for user, item in zip(users, items))
  if trained:
    raise ValueError(f"{trained} of {len(users)} interaction probe pairs are "
                     "known (trained-on) items of their user; probe held-out "
                     "pairs only")


def _task_interaction_auc(spec: TaskSpec, data: TaskData,
                          embeddings: Embeddings, seed: int,
                          user_pooling: str) -> float:
  """Params: `test_fraction` of users (0.3)."""
  del user_pooling
  return _pair_auc(spec, data, data.interactions, embeddings, seed)


def _task_conversion_auc(spec: TaskSpec, data: TaskData,
                         embeddings: Embeddings, seed: int,
                         user_pooling: str) -> float:
  """Params: `view_event` ("pv"), `conversion_event` ("buy"),
  `test_fraction` of users (0.3)."""
  del user_pooling
  pairs = behaviour_pairs.conversion_pairs(
      data.held_out_events, data.known_items,
      str(spec.params.get("view_event", behaviour_pairs.VIEW_EVENT)),
      str(spec.params.get("conversion_event", behaviour_pairs.BUY_EVENT)))
  return _pair_auc(spec, data, pairs, embeddings, seed)


def _pair_auc(spec: TaskSpec, data: TaskData, pairs: pd.DataFrame,
              embeddings: Embeddings, seed: int) -> float:
  """AUC of a probe of `pairs`' labels from `[u, i, u * i]`, split by user."""
  user_index = pairs["user_index"].to_numpy()
  _refuse_known_pairs(data, user_index, pairs["item_index"].to_numpy())
  items = embeddings.items[pairs["item_index"].to_numpy()]
  users = _closest_user_vectors(embeddings.users[user_index], items)
  features = np.concatenate([users, items, users * items], axis=1)
  distinct_users = np.unique(user_index)
  _, test_users = linear_probes.split(
      len(distinct_users), float(spec.params.get("test_fraction", 0.3)), seed)
  in_test = np.isin(user_index, distinct_users[test_users])
  return linear_probes.binary_auc(
      features, pairs["label"].to_numpy().astype(int),
      np.flatnonzero(~in_test), np.flatnonzero(in_test), seed)


def _task_relation_auc(spec: TaskSpec, data: TaskData, embeddings: Embeddings,
                       seed: int, user_pooling: str) -> float:
  """Params: `relation`, `max_pairs` (20000), `test_fraction` (0.3),
  `catalogue_negatives` (False: random items among every item; True: among
  `data.catalogue`, when items outside it have untrained vectors that would
  tell the random pairs apart)."""
  del user_pooling
  rng = np.random.default_rng(seed)
  related = np.asarray(data.item_relations[str(spec.params["relation"])])
  max_pairs = int(spec.params.get("max_pairs", 20000))
  if len(related) > max_pairs:
    related = related[rng.choice(len(related), max_pairs, replace=False)]
  if spec.params.get("catalogue_negatives"):
    random_pairs = rng.choice(np.flatnonzero(data.catalogue),
                              size=related.shape)
  else:
    random_pairs = rng.integers(data.first_item, len(embeddings.items),
                                size=related.shape)
  pairs = np.concatenate([related, random_pairs])
  labels = np.concatenate([np.ones(len(related), int),
                           np.zeros(len(random_pairs), int)])
  first, second = embeddings.items[pairs[:, 0]], embeddings.items[pairs[:, 1]]
  features = np.concatenate([first * second, np.abs(first - second)], axis=1)
  train, test = linear_probes.split(
      len(pairs), float(spec.params.get("test_fraction", 0.3)), seed)
  return linear_probes.binary_auc(features, labels, train, test, seed)


def _task_neighbour_coherence(spec: TaskSpec, data: TaskData,
                              embeddings: Embeddings, seed: int,
                              user_pooling: str) -> float:
  """Params: `k` (10). Cosine neighbours among the labelled items."""
  del seed, user_pooling
  k = int(spec.params.get("k", 10))
  items = _labelled_items(data)
  vectors = embeddings.items[items]
  vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True),
                                 1e-12)
  labels = _label_matrix(data, items)
  similarity = vectors @ vectors.T
  np.fill_diagonal(similarity, -np.inf)
  neighbours = np.argpartition(-similarity, k, axis=1)[:, :k]
  shares_label = np.einsum("nc,nkc->nk", labels, labels[neighbours]) > 0
  return float(shares_label.mean())


TASK_KINDS: dict[str, Callable] = {
    "next_item": _task_next_item,
    "next_category": _task_next_category,
    "sampled_ranking": _task_sampled_ranking,
    "user_binary_auc": _task_user_binary_auc,
    "user_class_f1": _task_user_class_f1,
    "item_class_f1": _task_item_class_f1,
    "item_multilabel_f1": _task_item_multilabel_f1,
    "interaction_auc": _task_interaction_auc,
    "conversion_auc": _task_conversion_auc,
    "relation_auc": _task_relation_auc,
    "neighbour_coherence": _task_neighbour_coherence,
}


def run_task(spec: TaskSpec, data: TaskData, embeddings: Embeddings, seed: int,
             user_pooling: str = "mean") -> dict[str, float]:
  """Runs one task; returns `{metric name: value}`.

  Single-metric tasks report under `spec.name`; multi-metric ones (sampled
  ranking) under `spec.name/metric`.
  """
  value = TASK_KINDS[spec.kind](spec, data, embeddings, seed, user_pooling)
  if isinstance(value, dict):
    return {f"{spec.name}/{metric}": v for metric, v in value.items()}
  return {spec.name: float(value)}


def run_tasks(specs: Sequence[TaskSpec], data: TaskData, embeddings: Embeddings,
              seed: int, user_pooling: str = "mean",
              not_scored: dict[str, str] | None = None) -> dict[str, float]:
  """Runs every task with one seed; returns all their metrics.

  Args:
    specs: the tasks.
    data: what they are about.
    embeddings: the model's frozen vectors.
    seed: the probes' seed.
    user_pooling: how K user vectors enter the user probes.
    not_scored: if given, a task whose held-out labels hold one class (e.g.
      no purchase among the held-out views) is left out of the result and
      its reason recorded here under its name; if None, it raises.

  Raises:
    linear_probes.OneClassError: for such a task, without `not_scored`.
  """
  results: dict[str, float] = {}
  for spec in specs:
    try:
      results.update(run_task(spec, data, embeddings, seed, user_pooling))
    except linear_probes.OneClassError as error:
      if not_scored is None:
        raise
      not_scored[spec.name] = f"seed {seed}: {error}"
  return results
