"""The real datasets as in-memory, indexed sequences for offline benchmarks.

The built-in datasets go through the pipeline's own importers (so the same
rows are used), a user's own data through `data.contract.load_dataset`
(`CONTRACT`). Every dataset is indexed (item index 0 is padding, users
0..U-1) and split leave-one-out by time: per user, the newest interaction is the test target,
the second newest the validation target, and the rest, oldest first, is the
training sequence (ReChorus' protocol).

Side information becomes padded token matrices per item:
- Amazon Grocery: the category and the complement/substitute related items
  (as `rel:<item id>` tokens: the text SEMINAR-style queries are built from;
  `without_relation_tokens` drops them for benchmarks that probe those
  relations).
- MovieLens-100K: title words, genres, release decade, and the movie's
  Freebase KG facts as `relation:entity` tokens (kept when at least two
  movies share them, most frequent first).
- A contract directory: categories, title words and related items
  (`contract_item_tokens`), each kept when at least two items share it.
- Taobao (UserBehavior sample): categories, as a contract directory. Its
  last two days (from `TAOBAO_HELD_OUT_FROM`) are held out of the sequences
  as `held_out_events`, the purchase and session probes' data; their items
  are indexed (embedded from their features) but never trained on.
- H&M (purchase sample): categories and title words of the articles that
  have metadata (4,116 of 17,033), customers' age, club status and news
  frequency. Its last 91 days (from `HM_HELD_OUT_FROM`) are held out the
  same way, for the probe of articles bought on the same day.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from data import contract
from data import features
from data import importers
from data import splits
from data import user_sequences
from offline_eval import protocols

TAOBAO = "taobao-userbehavior-sample"
HM = "hm-fashion"
DATASETS = ("amazon-grocery", "movielens-100k", TAOBAO, HM)
# 2017-12-02 00:00 in Beijing (UTC+8): the Taobao sample's last two of nine
# days, 27% of its events (176 bought of 15,285 newly viewed user-item
# pairs), are held out.
TAOBAO_HELD_OUT_FROM = 1_512_144_000
# 2020-06-24 00:00 UTC: the H&M sample's last 91 days, 13% of its purchases
# (541 customers), are held out. Purchases carry a date only, so a day's
# purchases share a timestamp and a "session" is a day.
HM_HELD_OUT_FROM = 1_592_956_800
# The datasets whose last days are held out of every split.
HELD_OUT_FROM = {TAOBAO: TAOBAO_HELD_OUT_FROM, HM: HM_HELD_OUT_FROM}
# A user's own contract directory (`data.contract.load_dataset`).
CONTRACT = "contract"
DATASET_CHOICES = DATASETS + (CONTRACT,)
MAX_CATEGORIES = 8
MAX_TOKENS = 32
_WORD = re.compile(r"[a-z0-9']+")
# Tokens naming a related item (also-bought, also-viewed, related).
RELATION_TOKEN_PREFIX = "rel:"
# KG relations of the movie itself (head = movie), as item attributes.
_MOVIE_RELATION_PREFIX = "film.film."


@dataclasses.dataclass
class SequenceDataset:
  """Indexed interactions, split leave-one-out, with item and user side info.

  Attributes:
    name: dataset name.
    user_ids: `[U]` raw user ids; the position is the user index.
    item_ids: `[num_items]` raw item ids; "" at padding index 0.
    train_sequences: per user, train item indices oldest first.
    valid_items: `[U]` validation target per user.
    test_items: `[U]` test target per user.
    item_categories: `[num_items, MAX_CATEGORIES]` category indices, 0 = pad.
    category_names: category index -> name; "" at 0.
    item_tokens: `[num_items, MAX_TOKENS]` text/attribute token indices.
    token_names: token index -> token; "" at 0.
    users: user attributes by user index (MovieLens), else None.
    item_relations: relation name (complement, substitute) -> `[n, 2]` item
      index pairs, from the items table.
    ratings: MovieLens' every rating with user_index, item_index, rating,
      timestamp and label (1 for a positive, which the sequences hold, else
      0); None for implicit data.
    train_events: per user, the event type index of each train item (the
      contract's `event`, e.g. Taobao's pv/cart/fav/buy), aligned with
      `train_sequences`; None when not indexed.
    valid_events: `[U]` event type of each validation target.
    event_names: event type index -> name; "" (none) at 0.
    held_out_events: the events left out of every split (see
      `from_contract`), columns `user_index`, `item_index`, `event` (name)
      and `timestamp`; None when nothing is held out.
  """
  name: str
  user_ids: np.ndarray
  item_ids: np.ndarray
  train_sequences: list[np.ndarray]
  valid_items: np.ndarray
  test_items: np.ndarray
  item_categories: np.ndarray
  category_names: list[str]
  item_tokens: np.ndarray
  token_names: list[str]
  users: pd.DataFrame | None = None
  item_relations: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  ratings: pd.DataFrame | None = None
  train_events: list[np.ndarray] | None = None
  valid_events: np.ndarray | None = None
  event_names: list[str] = dataclasses.field(default_factory=lambda: [""])
  held_out_events: pd.DataFrame | None = None

  @property
  def num_users(self) -> int:
    return len(self.user_ids)

  @property
  def num_items(self) -> int:
    return len(self.item_ids)

  def train_counts(self) -> np.ndarray:
    """`[num_items]` train interactions per item."""
    return np.bincount(np.concatenate(self.train_sequences),
                       minlength=self.num_items)

  def catalogue(self, include_valid: bool) -> np.ndarray:
    """`[num_items]` the items full ranking ranks among, as `evaluate` does.

    Those with a positive in the data a model was fit on: the train
    sequences, and with `include_valid` the validation targets too (the fit
    for predicting the test target). Padding never has one.
    """
    fitted = self.train_sequences + ([self.valid_items] if include_valid
                                     else [])
    return protocols.items_with_positives(fitted, self.num_items)

  def interacted(self, user: int) -> np.ndarray:
    """Every item of `user`: train, validation and test."""
    return np.concatenate([self.train_sequences[user],
                           [self.valid_items[user], self.test_items[user]]])

  def held_out_ratings(self) -> pd.DataFrame:
    """The ratings no model saw: the test-time probe pairs of `ratings`.

    A pair is held out when it is neither a train item nor the validation
    item of its user (the test-time history), and it was rated no earlier
    than that validation item, so it lies after everything the user vector
    is built from. That keeps each user's test target (a positive) and the
    items they rated as negatives in the same period (never trained on: only
    positives are).

    Returns:
      The held-out rows of `ratings`.

    Raises:
      ValueError: when the dataset has no ratings.
    """
    if self.ratings is None:
      raise ValueError(f"{self.name} has no ratings to hold out")
    ratings = self.ratings
    users = ratings["user_index"].to_numpy()
    items = ratings["item_index"].to_numpy()
    pair_code = users * self.num_items + items
    history = np.concatenate([
        user * self.num_items + np.append(sequence, self.valid_items[user])
        for user, sequence in enumerate(self.train_sequences)])
    seen = np.isin(pair_code, history)
    is_valid = items == self.valid_items[users]
    cutoff = np.full(self.num_users, np.iinfo(np.int64).max)
    cutoff[users[is_valid]] = ratings["timestamp"].to_numpy()[is_valid]
    return ratings[~seen & (ratings["timestamp"].to_numpy() >= cutoff[users])]

  def candidate_features(self) -> dict[str, np.ndarray]:
    """Candidate-tower inputs of every item index, under the pipeline's names.

    Row 0 is padding, as in the pipeline; one all-padding row is appended
    for the out-of-vocabulary index the models reserve after the items.
    """
    def with_oov_row(rows):
      return np.concatenate([rows, np.zeros_like(rows[:1])]).astype(np.int64)

    return {
        features.ITEM_INDEX: np.arange(self.num_items + 1, dtype=np.int64),
        features.TITLE_TOKEN_INDICES: with_oov_row(self.item_tokens),
        features.CATEGORY_INDICES: with_oov_row(self.item_categories),
    }

  def train_sampling_probability(self) -> np.ndarray:
    """`[num_items + 1]` share of train interactions per item (0 for OOV)."""
    counts = np.append(self.train_counts(), 0).astype(np.float64)
    return counts / counts.sum()

  def next_item_examples(self, history_length: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (user, history prefix, next item) per train interaction.

    Returns:
      `[n]` users, `[n, history_length]` histories in the pipeline's layout
      (the `history_length` most recent items, oldest first, right-padded
      with 0) and `[n]` target items.
    """
    users = np.repeat(np.arange(self.num_users, dtype=np.int64),
                      [len(sequence) for sequence in self.train_sequences])
    return (users, _prefixes(self.train_sequences, history_length),
            np.concatenate(self.train_sequences).astype(np.int64))

  def next_item_event_histories(self, history_length: int) -> np.ndarray:
    """The event types of `next_item_examples`' histories, aligned with them."""
    return _prefixes(self.train_events, history_length)

  def padded_history(self, max_len: int, include_valid: bool = False) -> np.ndarray:
    """`[U, max_len]` most recent items, oldest first, right-padded with 0.

    With `include_valid`, the validation target is appended to the history:
    the input for predicting the test target.
    """
    return _most_recent(self.train_sequences,
                        self.valid_items if include_valid else None, max_len)

  def padded_event_history(self, max_len: int,
                           include_valid: bool = False) -> np.ndarray:
    """The event types of `padded_history`'s items, aligned with them."""
    return _most_recent(self.train_events,
                        self.valid_events if include_valid else None, max_len)


def _prefixes(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
  """`[n, length]`: for each position of each sequence in turn, the `length`
  values before it, oldest first, right-padded with 0."""
  return _pad_rows([sequence[max(0, position - length):position]
                    for sequence in sequences
                    for position in range(len(sequence))], length)


def _most_recent(sequences: Sequence[np.ndarray], appended: np.ndarray | None,
                 length: int) -> np.ndarray:
  """`[len(sequences), length]`: each sequence's newest `length` values
  (after appending `appended[i]` to sequence i, if given), oldest first,
  right-padded with 0."""
  if appended is not None:
    sequences = [np.append(sequence, value)
                 for sequence, value in zip(sequences, appended)]
  return _pad_rows([sequence[-length:] for sequence in sequences], length)


def load_sequences(name: str, source_root: str | pathlib.Path | None = None,
                   dataset_dir: str | pathlib.Path | None = None
                   ) -> SequenceDataset:
  """Loads a built-in dataset, or a user's contract directory.

  Args:
    name: one of `DATASETS`, or `CONTRACT` for `dataset_dir`.
    source_root: the raw data folder of the built-in datasets;
      `importers.default_source_root()` if None.
    dataset_dir: with `CONTRACT`, the directory `data.contract.load_dataset`
      reads.

  Returns:
    The indexed, split dataset.
  """
  if name == CONTRACT:
    if not dataset_dir:
      raise ValueError(f"dataset {CONTRACT!r} needs a dataset directory")
    return from_contract(contract.load_dataset(dataset_dir),
                         pathlib.Path(dataset_dir).name)
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; known: {DATASET_CHOICES}")
  root = pathlib.Path(source_root or importers.default_source_root())
  dataset = importers.IMPORTERS[name](root)
  if name in HELD_OUT_FROM:
    return from_contract(dataset, name, held_out_from=HELD_OUT_FROM[name])
  if name == "amazon-grocery":
    return from_contract(dataset, name, _grocery_item_tokens)
  # MovieLens' tokens come from the raw files (KG facts), not the contract.
  indexed = from_contract(dataset, name, lambda items: {})
  item_index = {item: index for index, item in enumerate(indexed.item_ids)
                if index}
  tokens, token_names = _movielens_tokens(root, dataset.items, item_index,
                                          indexed.num_items)
  user_index = {user: index for index, user in enumerate(indexed.user_ids)}
  interactions = dataset.interactions
  ratings = interactions.assign(
      user_index=interactions["user_id"].map(user_index),
      item_index=interactions["item_id"].map(item_index),
      rating=interactions["event"].str.removeprefix("rating=").astype(float),
      label=(interactions["label"] >=
             user_sequences.POSITIVE_THRESHOLD).astype(int))
  ratings = ratings.dropna(subset=["user_index", "item_index"]).astype(
      {"user_index": np.int64, "item_index": np.int64})
  return dataclasses.replace(
      indexed, item_tokens=tokens, token_names=token_names,
      ratings=ratings[["user_index", "item_index", "rating", "timestamp",
                       "label"]].reset_index(drop=True))


def from_contract(dataset: contract.Dataset, name: str,
                  item_tokens: Callable[[pd.DataFrame], dict[str, list[str]]]
                  | None = None,
                  held_out_from: int | None = None) -> SequenceDataset:
  """Indexes and splits a contract `Dataset`'s positive interactions.

  Args:
    dataset: a validated contract dataset; `items` and `users` are optional.
    name: the dataset's name in reports.
    item_tokens: raw item id -> its text/attribute tokens, from the items
      table; default `contract_item_tokens` (categories, title words and
      related items). Tokens shared by fewer than two items are dropped.
    held_out_from: if set, the positives at or after this timestamp are in
      no split: they become `held_out_events` (of the users and items
      indexed), and their items are indexed.

  Returns:
    The indexed, split dataset; `users` holds the users table's rows in
    user-index order when the dataset has one.
  """
  interactions = dataset.interactions
  positives = user_sequences.positive_rows(interactions)
  item_ids = np.array([""] + sorted(positives["item_id"].unique(), key=_id_order))
  item_index = {item: index for index, item in enumerate(item_ids) if index}
  event_names = [""] + sorted(set(positives["event"].astype(str)) - {""})
  event_index = {event: index for index, event in enumerate(event_names)}
  frame = pd.DataFrame({"user_id": positives["user_id"].to_numpy(),
                        "item": positives["item_id"].map(item_index).to_numpy(),
                        "time": positives["timestamp"].to_numpy(),
                        "event": positives["event"].astype(str).map(
                            event_index).to_numpy()})
  held_out = None
  if held_out_from is not None:
    held_out = frame[frame["time"] >= held_out_from]
    frame = frame[frame["time"] < held_out_from]
  train, valid, test = splits.leave_one_out(frame, "user_id", "time")
  user_ids = np.array(sorted(test["user_id"].unique(), key=_id_order))
  user_index = {user: index for index, user in enumerate(user_ids)}
  train = train[train["user_id"].isin(user_index)]
  sequences = [np.empty(0, np.int64)] * len(user_ids)
  events = [np.empty(0, np.int64)] * len(user_ids)
  for user, group in train.groupby("user_id", sort=False):
    sequences[user_index[user]] = group["item"].to_numpy(np.int64)
    events[user_index[user]] = group["event"].to_numpy(np.int64)
  items = dataset.items if dataset.items is not None else pd.DataFrame(
      {column: pd.Series(dtype=str) for column in contract.ITEM_COLUMNS})
  categories, category_names = _category_matrix(items, item_index,
                                                len(item_ids))
  raw_tokens = (item_tokens or contract_item_tokens)(items)
  tokens, token_names = token_matrix(
      {item_index[item]: values for item, values in raw_tokens.items()
       if item in item_index}, len(item_ids), min_items=2)
  users = None
  if dataset.users is not None:
    users = dataset.users.set_index("user_id").reindex(user_ids).reset_index()
  if held_out is not None:
    held_out = held_out[held_out["user_id"].isin(user_index)]
    held_out = pd.DataFrame({
        "user_index": held_out["user_id"].map(user_index).to_numpy(np.int64),
        "item_index": held_out["item"].to_numpy(np.int64),
        "event": np.asarray(event_names, dtype=object)[
            held_out["event"].to_numpy()],
        "timestamp": held_out["time"].to_numpy()})
  return SequenceDataset(name, user_ids, item_ids, sequences,
                         _per_user(valid, user_index),
                         _per_user(test, user_index), categories,
                         category_names, tokens, token_names, users=users,
                         item_relations=_item_relations(items, item_index),
                         train_events=events,
                         valid_events=_per_user(valid, user_index, "event"),
                         event_names=event_names, held_out_events=held_out)


def without_relation_tokens(dataset: SequenceDataset) -> SequenceDataset:
  """The dataset without `RELATION_TOKEN_PREFIX` tokens, re-indexed.

  A probe of item relations (complements, substitutes) must not read items
  whose tokens were built from those very lists.
  """
  kept = [index for index, name in enumerate(dataset.token_names)
          if not name.startswith(RELATION_TOKEN_PREFIX)]
  new_index = np.zeros(len(dataset.token_names), np.int64)
  new_index[kept] = np.arange(len(kept))
  rows = [[token for token in new_index[row] if token]
          for row in dataset.item_tokens]
  return dataclasses.replace(
      dataset, item_tokens=_pad_rows(rows, MAX_TOKENS),
      token_names=[dataset.token_names[index] for index in kept])


def contract_item_tokens(items: pd.DataFrame) -> dict[str, list[str]]:
  """Categories, title words and related items of every contract item."""
  return {
      item_id: ([f"cat:{c}" for c in _listed(category)] +
                [f"word:{w}" for w in _WORD.findall(title.lower())] +
                [f"{RELATION_TOKEN_PREFIX}{r}" for r in _listed(related)])
      for item_id, title, category, related in zip(
          items["item_id"], items["title"], items["category"],
          items["related_items"])}


def _listed(text: str) -> list[str]:
  return [value for value in text.split(contract.LIST_SEPARATOR) if value]


def _id_order(raw_id: str):
  """Numeric ids in numeric order, others after them in text order."""
  return (0, int(raw_id), "") if raw_id.isdigit() else (1, 0, raw_id)


def _per_user(frame: pd.DataFrame, user_index: dict[str, int],
              column: str = "item") -> np.ndarray:
  values = np.zeros(len(user_index), dtype=np.int64)
  values[frame["user_id"].map(user_index).to_numpy()] = frame[column].to_numpy()
  return values


def _pad_rows(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
  matrix = np.zeros((len(rows), width), dtype=np.int64)
  for index, row in enumerate(rows):
    row = list(row)[:width]
    matrix[index, :len(row)] = row
  return matrix


def _category_matrix(items: pd.DataFrame | None, item_index: dict[str, int],
                     num_items: int) -> tuple[np.ndarray, list[str]]:
  names = [""]
  lookup: dict[str, int] = {}
  rows: list[list[int]] = [[] for _ in range(num_items)]
  for item_id, category in zip(items["item_id"], items["category"]):
    if item_id not in item_index:
      continue
    for name in filter(None, category.split(contract.LIST_SEPARATOR)):
      if name not in lookup:
        lookup[name] = len(names)
        names.append(name)
      rows[item_index[item_id]].append(lookup[name])
  return _pad_rows(rows, MAX_CATEGORIES), names


def token_matrix(item_tokens: dict[int, list[str]], num_items: int,
                 min_items: int = 1, max_tokens: int = MAX_TOKENS
                 ) -> tuple[np.ndarray, list[str]]:
  """Indexes tokens shared by at least `min_items` items.

  Args:
    item_tokens: item index -> its tokens, in order.
    num_items: rows of the matrix (items without tokens stay padding).
    min_items: the fewest items a kept token must be named by.
    max_tokens: the matrix's width; an item keeps its first distinct kept
      tokens up to it.

  Returns:
    `[num_items, max_tokens]` 0-padded token indices, each at most once per
    item, and the token names (index 0 is "").
  """
  document_frequency = collections.Counter(
      token for tokens in item_tokens.values() for token in set(tokens))
  names = [""] + sorted(token for token, count in document_frequency.items()
                        if count >= min_items)
  lookup = {token: index for index, token in enumerate(names) if index}
  rows: list[list[int]] = [[] for _ in range(num_items)]
  for item, tokens in item_tokens.items():
    seen: set[int] = set()
    for token in tokens:
      index = lookup.get(token)
      if index is not None and index not in seen:
        seen.add(index)
        rows[item].append(index)
  return _pad_rows(rows, max_tokens), names


def _grocery_item_tokens(items: pd.DataFrame) -> dict[str, list[str]]:
  """The whole category string and the related items (no title words)."""
  return {item_id: [f"cat:{category}"] +
          [f"{RELATION_TOKEN_PREFIX}{r}" for r in _listed(related)]
          for item_id, category, related in zip(
              items["item_id"], items["category"], items["related_items"])}


def _item_relations(items: pd.DataFrame, item_index: dict[str, int]
                    ) -> dict[str, np.ndarray]:
  """Complement and substitute item index pairs, both ends indexed."""
  relations = {}
  for name in ("complement", "substitute"):
    pairs = []
    for item_id, related in zip(items["item_id"], items[f"{name}_items"]):
      if item_id not in item_index:
        continue
      for other in _listed(related):
        if other in item_index and other != item_id:
          pairs.append((item_index[item_id], item_index[other]))
    relations[name] = np.array(sorted(set(pairs)), dtype=np.int64).reshape(-1, 2)
  return relations


def _movielens_tokens(root: pathlib.Path, items: pd.DataFrame,
                      item_index: dict[str, int], num_items: int
                      ) -> tuple[np.ndarray, list[str]]:
  folder = root / "movielens-100k"
  movies = importers.read_raw_tsv(folder / "ml-100k.item", root)
  links = importers.read_raw_tsv(folder / "ml-100k.link", root)
  kg = importers.read_raw_tsv(folder / "ml-100k.kg", root)
  entity_items = collections.defaultdict(list)
  for item_id, entity in zip(links["item_id"], links["entity_id"]):
    if item_id in item_index:
      entity_items[entity].append(item_index[item_id])
  facts = kg[kg["head_id"].isin(entity_items) &
             kg["relation_id"].str.startswith(_MOVIE_RELATION_PREFIX)]
  kg_tokens = collections.defaultdict(list)
  for head, relation, tail in zip(facts["head_id"], facts["relation_id"],
                                  facts["tail_id"]):
    for item in entity_items[head]:
      kg_tokens[item].append(
          f"{relation.removeprefix(_MOVIE_RELATION_PREFIX)}:{tail}")
  shared_kg = collections.Counter(t for tokens in kg_tokens.values() for t in set(tokens))
  item_tokens = {}
  for item_id, title, year, genres in zip(movies["item_id"], movies["movie_title"],
                                          movies["release_year"], movies["class"]):
    if item_id not in item_index:
      continue
    item = item_index[item_id]
    decade = f"decade:{year[:3]}0s" if year[:3].isdigit() else ""
    kg_facts = sorted(set(kg_tokens[item]), key=lambda t: (-shared_kg[t], t))
    item_tokens[item] = ([f"genre:{g}" for g in genres.split()] +
                         [decade] * bool(decade) +
                         [f"word:{w}" for w in _WORD.findall(title.lower())] +
                         kg_facts)
  return token_matrix(item_tokens, num_items, min_items=2)
