"""A small synthetic dataset with planted structure, ONLY for fast tests.

Items fall into clusters; each user prefers one cluster and most of their
interactions hit it, so a working model must beat chance quickly. The data is
made up: no quality claim of any kind may be based on it. Real results come
from the real datasets (see importers.py).

Planted structure, for tests to check:
  * item `category` is `cluster_<c>`; its title words come from the cluster's
    own vocabulary (`c<c>word<k>`) and its related items share its cluster;
  * each user prefers one cluster; about IN_CLUSTER_SHARE of their interactions
    are items of that cluster;
  * negatives (label 0) are rare in the preferred cluster and common outside;
  * timestamps strictly increase within each user;
  * the user attribute `segment` is `segment_<preferred cluster>` for about
    SEGMENT_AGREEMENT of users; `age_group` is noise.

`write_log` makes something else: a large interaction log with the shape of a
real one, for scaling benchmarks (millions of rows, written without holding
the strings of the whole log in memory):
  * item popularity is Zipf-like: categories are drawn by a Zipf law, and
    items inside a category by another, so a few items take most events;
  * user activity is heavy-tailed (log-normal counts, at least
    LOG_MIN_EVENTS_PER_USER each) and sums to exactly the requested size;
  * each user prefers one category, where about LOG_TASTE_SHARE of their
    events fall;
  * timestamps increase within each user, spread over about
    LOG_SPAN_SECONDS;
  * items have titles (Zipf-drawn words), one or two categories, and about
    LOG_VIDEO_SHARE of them are videos; about LOG_NEGATIVE_RATE of events
    are negatives (label 0, `dismiss`).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterator

import numpy as np
import pandas as pd

from data import contract

IN_CLUSTER_SHARE = 0.85
SEGMENT_AGREEMENT = 0.9
NEGATIVE_RATE_IN_CLUSTER = 0.05
NEGATIVE_RATE_OUT_OF_CLUSTER = 0.5
_WORDS_PER_CLUSTER = 12
_WORDS_PER_TITLE = 3
_RELATED_PER_ITEM = 3
_AGE_GROUPS = ("18-24", "25-34", "35-49", "50+")
_START_SECONDS = 1_600_000_000
_MAX_GAP_SECONDS = 86_400


def generate(
  n_users: int = 200,
  n_items: int = 300,
  n_clusters: int = 5,
  interactions_per_user: tuple[int, int] = (15, 40),
  seed: int = 0,
) -> contract.Dataset:
  """Generates a deterministic synthetic dataset with planted clusters.

  Args:
    n_users: Number of users.
    n_items: Number of items; must be at least `n_clusters`.
    n_clusters: Number of item clusters (and user preferences); at least 2.
    interactions_per_user: Inclusive (min, max) interactions per user.
    seed: Same seed, same dataset.

  Returns:
    A `Dataset` with interactions, items and users.
  """
  # One cluster would leave no "elsewhere" and so no structure to detect.
  if not 2 <= n_clusters <= n_items:
    raise ValueError(f"need 2 <= n_clusters <= n_items, got {n_clusters} and {n_items}")
  rng = np.random.default_rng(seed)
  item_cluster = np.arange(n_items) % n_clusters
  user_cluster = rng.integers(n_clusters, size=n_users)
  return contract.Dataset(
    interactions=_interactions(rng, item_cluster, user_cluster, interactions_per_user),
    items=_items(rng, item_cluster),
    users=_users(rng, user_cluster, n_clusters),
  )


def _item_id(index: int) -> str:
  return f"item_{index}"


def _user_id(index: int) -> str:
  return f"user_{index}"


def _items(rng: np.random.Generator, item_cluster: np.ndarray) -> pd.DataFrame:
  rows = []
  for index, cluster in enumerate(item_cluster):
    words = rng.choice(_WORDS_PER_CLUSTER, size=_WORDS_PER_TITLE, replace=False)
    same_cluster = item_cluster == cluster
    same_cluster[index] = False  # An item is not related to itself.
    siblings = np.flatnonzero(same_cluster)
    related = rng.choice(siblings, size=min(_RELATED_PER_ITEM, siblings.size), replace=False)
    rows.append({
      "item_id": _item_id(index),
      "title": " ".join(f"c{cluster}word{word}" for word in words),
      "category": f"cluster_{cluster}",
      "related_items": contract.LIST_SEPARATOR.join(_item_id(item) for item in related),
    })
  return contract.normalize_items(pd.DataFrame(rows), "synthetic items")


def _users(rng: np.random.Generator, user_cluster: np.ndarray, n_clusters: int) -> pd.DataFrame:
  agrees = rng.random(user_cluster.size) < SEGMENT_AGREEMENT
  segment = np.where(agrees, user_cluster, rng.integers(n_clusters, size=user_cluster.size))
  users = pd.DataFrame({
    "user_id": [_user_id(index) for index in range(user_cluster.size)],
    "segment": [f"segment_{cluster}" for cluster in segment],
    "age_group": rng.choice(_AGE_GROUPS, size=user_cluster.size),
  })
  return contract.normalize_users(users, "synthetic users")


def _interactions(
  rng: np.random.Generator,
  item_cluster: np.ndarray,
  user_cluster: np.ndarray,
  interactions_per_user: tuple[int, int],
) -> pd.DataFrame:
  low, high = interactions_per_user
  frames = []
  for user, cluster in enumerate(user_cluster):
    count = int(rng.integers(low, high + 1))
    in_cluster = rng.random(count) < IN_CLUSTER_SHARE
    items = np.where(
      in_cluster,
      rng.choice(np.flatnonzero(item_cluster == cluster), size=count),
      rng.choice(np.flatnonzero(item_cluster != cluster), size=count),
    )
    negative_rate = np.where(in_cluster, NEGATIVE_RATE_IN_CLUSTER, NEGATIVE_RATE_OUT_OF_CLUSTER)
    labels = (rng.random(count) >= negative_rate).astype(float)
    start = _START_SECONDS + int(rng.integers(_MAX_GAP_SECONDS * 30))
    frames.append(pd.DataFrame({
      "user_id": _user_id(user),
      "item_id": [_item_id(item) for item in items],
      "timestamp": start + np.cumsum(rng.integers(1, _MAX_GAP_SECONDS, size=count)),
      "label": labels,
      "event": np.where(labels == 1.0, "click", "dismiss"),
    }))
  interactions = pd.concat(frames, ignore_index=True)
  return contract.normalize_interactions(interactions, "synthetic interactions")


# ---------------------------------------------------------------- a large log

LOG_MEAN_EVENTS_PER_USER = 40
LOG_EVENTS_PER_ITEM = 200
LOG_ITEMS_PER_CATEGORY = 100
LOG_MIN_EVENTS_PER_USER = 3
LOG_ACTIVITY_SIGMA = 1.2
LOG_ZIPF_EXPONENT = 1.0
LOG_TASTE_SHARE = 0.6
LOG_VIDEO_SHARE = 0.3
LOG_NEGATIVE_RATE = 0.1
LOG_SPAN_SECONDS = 365 * 86_400
_LOG_VOCABULARY_SIZE = 5_000
_LOG_TITLE_WORDS = (3, 8)
_LOG_SECOND_CATEGORY_SHARE = 0.3
# The mean gap between one user's events; a heavy user's gaps shrink so that
# their whole history still fits in half the span.
_LOG_MEAN_GAP_SECONDS = 2 * 86_400
_LOG_ROWS_PER_CHUNK = 1_000_000


@dataclasses.dataclass(frozen=True)
class LogShape:
  """How many users, items and categories a log of a given size has.

  Users grow with the log (about LOG_MEAN_EVENTS_PER_USER events each) and,
  unless an item count is given, so does the catalogue (about
  LOG_EVENTS_PER_ITEM events per item), as when a shop's traffic and
  assortment grow together. A given item count sets the catalogue apart
  from the traffic, to measure what grows with the catalogue alone; with
  Zipf-like popularity some items then have no event at all.
  """

  n_interactions: int
  n_users: int
  n_items: int
  n_categories: int

  @classmethod
  def for_size(cls, n_interactions: int,
               n_items: int | None = None) -> "LogShape":
    n_users = max(2, n_interactions // LOG_MEAN_EVENTS_PER_USER)
    if n_interactions < LOG_MIN_EVENTS_PER_USER * n_users:
      raise ValueError(f"a log needs at least {LOG_MIN_EVENTS_PER_USER * 2} "
                       f"interactions, got {n_interactions}")
    if n_items is None:
      n_items = max(50, n_interactions // LOG_EVENTS_PER_ITEM)
    elif n_items < 50:
      raise ValueError(f"a log's catalogue needs at least 50 items, got "
                       f"{n_items}")
    return cls(n_interactions, n_users, n_items,
               max(5, n_items // LOG_ITEMS_PER_CATEGORY))


def generate_log(n_interactions: int, seed: int = 0,
                 n_items: int | None = None) -> contract.Dataset:
  """A realistic synthetic log of `n_interactions` rows, with its items.

  Rows are drawn a million at a time as integer codes, and the id and text
  columns of the interactions are categoricals of str, so ten million rows
  take a few hundred MB rather than a Python string per cell. Written with
  `contract.write_dataset` (or `write_log`), they read back as plain str.

  Args:
    n_interactions: rows of the interaction log, exactly.
    seed: same seed, same log.
    n_items: items of the catalogue; None grows it with the log
      (`LogShape.for_size`).

  Returns:
    A `Dataset` with interactions and items (no users).
  """
  shape = LogShape.for_size(n_interactions, n_items)
  rng = np.random.default_rng(seed)
  catalogue = _LogCatalogue.draw(rng, shape)
  codes = pd.concat(list(_log_chunks(rng, shape, catalogue)),
                    ignore_index=True)
  return contract.Dataset(interactions=_log_frame(codes, shape, catalogue),
                          items=catalogue.items_table())


def write_log(directory, n_interactions: int, seed: int = 0,
              fmt: str = "parquet", time_ordered: bool = False,
              n_items: int | None = None) -> pathlib.Path:
  """Writes `generate_log(n_interactions, seed, n_items)` as a contract
  directory.

  Args:
    directory: created if missing; contract files already there are replaced.
    n_interactions: rows of `interactions.<fmt>`.
    seed: same seed, same files.
    fmt: "parquet" or "csv".
    time_ordered: write the rows in time order (ties in user order), as an
      event stream is logged, instead of user by user.
    n_items: items of the catalogue; None grows it with the log.

  Returns:
    The directory, holding `interactions.<fmt>` and `items.<fmt>`.
  """
  dataset = generate_log(n_interactions, seed, n_items)
  if time_ordered:
    dataset = dataclasses.replace(
        dataset, interactions=dataset.interactions.sort_values(
            "timestamp", kind="stable", ignore_index=True))
  return contract.write_dataset(dataset, directory, fmt)


def _zipf_weights(n: int, exponent: float = LOG_ZIPF_EXPONENT) -> np.ndarray:
  weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
  return weights / weights.sum()


@dataclasses.dataclass(frozen=True)
class _LogCatalogue:
  """Items grouped by their primary category, each category a contiguous
  block of item indices.

  Attributes:
    category_probability: `[n_categories]` Zipf share of each category.
    within_category_cdf: `[n_items]` per block, `c + ` the block's cumulative
      Zipf distribution, so a draw `c + u` (u uniform in [0, 1)) finds an
      item of category c by one `searchsorted` over all items.
    item_name: `[n_items]` item ids, shuffled so that an id says nothing about
      popularity.
    is_video: `[n_items]` whether the item is a video.
    titles: `[n_items]` titles, words drawn by a Zipf law.
    categories: `[n_items]` the primary category, and for some items a
      second one, `|`-separated.
  """

  category_probability: np.ndarray
  within_category_cdf: np.ndarray
  item_name: np.ndarray
  is_video: np.ndarray
  titles: np.ndarray
  categories: np.ndarray

  @classmethod
  def draw(cls, rng: np.random.Generator, shape: LogShape) -> "_LogCatalogue":
    # Every category gets at least one item, the rest by Zipf share.
    category_probability = _zipf_weights(shape.n_categories)
    extra = rng.multinomial(shape.n_items - shape.n_categories,
                            category_probability)
    sizes = extra + 1
    category_start = np.concatenate([[0], np.cumsum(sizes)])
    category_of_item = np.repeat(np.arange(shape.n_categories), sizes)
    within_category_cdf = np.concatenate([
        category + np.cumsum(_zipf_weights(size)) for category, size
        in enumerate(sizes)])
    # Rounding must not leave a draw of `c + 0.99999...` past the block.
    within_category_cdf[category_start[1:] - 1] = np.arange(
        1, shape.n_categories + 1)
    item_name = np.array([f"item_{index}" for index
                          in rng.permutation(shape.n_items)], dtype=object)
    word_probability = _zipf_weights(_LOG_VOCABULARY_SIZE)
    low, high = _LOG_TITLE_WORDS
    titles = np.array([
        " ".join(f"word{word}" for word in rng.choice(
            _LOG_VOCABULARY_SIZE, size=int(rng.integers(low, high + 1)),
            p=word_probability))
        for _ in range(shape.n_items)], dtype=object)
    second = rng.integers(shape.n_categories, size=shape.n_items)
    has_second = ((rng.random(shape.n_items) < _LOG_SECOND_CATEGORY_SHARE)
                  & (second != category_of_item))
    categories = np.array([
        f"cat_{first}|cat_{other}" if both else f"cat_{first}"
        for first, other, both in zip(category_of_item, second, has_second)],
                          dtype=object)
    return cls(category_probability, within_category_cdf, item_name,
               rng.random(shape.n_items) < LOG_VIDEO_SHARE, titles, categories)

  def items_table(self) -> pd.DataFrame:
    return contract.normalize_items(pd.DataFrame({
        "item_id": self.item_name, "title": self.titles,
        "category": self.categories}), "synthetic log items")

  def draw_items(self, rng: np.random.Generator,
                 categories: np.ndarray) -> np.ndarray:
    """One item of each given category, by the category's Zipf law."""
    return np.searchsorted(self.within_category_cdf,
                           categories + rng.random(categories.size),
                           side="right")


def _user_event_counts(rng: np.random.Generator, shape: LogShape) -> np.ndarray:
  """Heavy-tailed events per user, at least the minimum, summing exactly."""
  weights = rng.lognormal(0.0, LOG_ACTIVITY_SIGMA, size=shape.n_users)
  spare = shape.n_interactions - LOG_MIN_EVENTS_PER_USER * shape.n_users
  counts = LOG_MIN_EVENTS_PER_USER + np.floor(
      weights / weights.sum() * spare).astype(np.int64)
  short = shape.n_interactions - int(counts.sum())
  counts[rng.choice(shape.n_users, size=short, replace=False)] += 1
  return counts


def _log_chunks(rng: np.random.Generator, shape: LogShape,
                catalogue: _LogCatalogue) -> Iterator[pd.DataFrame]:
  """Integer-coded interaction rows, a block of whole users at a time."""
  counts = _user_event_counts(rng, shape)
  preferred = rng.choice(shape.n_categories, size=shape.n_users,
                         p=catalogue.category_probability)
  first_row = np.concatenate([[0], np.cumsum(counts)])
  boundaries = np.searchsorted(
      first_row, np.arange(0, shape.n_interactions, _LOG_ROWS_PER_CHUNK),
      side="right") - 1
  boundaries = np.unique(np.append(boundaries, shape.n_users))
  for start, stop in zip(boundaries[:-1], boundaries[1:]):
    users = np.repeat(np.arange(start, stop), counts[start:stop])
    rows = users.size
    by_taste = rng.random(rows) < LOG_TASTE_SHARE
    categories = np.where(
        by_taste, preferred[users],
        rng.choice(shape.n_categories, size=rows,
                   p=catalogue.category_probability))
    mean_gap = np.minimum(_LOG_MEAN_GAP_SECONDS,
                          LOG_SPAN_SECONDS / 2 / counts[start:stop])
    gaps = 1 + rng.exponential(mean_gap[users - start]).astype(np.int64)
    # Each user's clock: their own start plus the running sum of their gaps.
    elapsed = np.cumsum(gaps)
    user_first = first_row[start:stop] - first_row[start]
    elapsed -= np.repeat(elapsed[user_first] - gaps[user_first],
                         counts[start:stop])
    user_start = rng.integers(LOG_SPAN_SECONDS // 2, size=stop - start)
    yield pd.DataFrame({
        "user": users.astype(np.int32),
        "item": catalogue.draw_items(rng, categories).astype(np.int32),
        "timestamp": _START_SECONDS + user_start[users - start] + elapsed,
        "negative": rng.random(rows) < LOG_NEGATIVE_RATE,
    })


def _log_frame(chunk: pd.DataFrame, shape: LogShape,
               catalogue: _LogCatalogue) -> pd.DataFrame:
  """Contract columns from integer codes, the text ones as categoricals."""
  user_names = np.array([_user_id(index) for index in range(shape.n_users)],
                        dtype=object)
  negative = chunk["negative"].to_numpy()
  return pd.DataFrame({
      "user_id": pd.Categorical.from_codes(chunk["user"], user_names),
      "item_id": pd.Categorical.from_codes(chunk["item"], catalogue.item_name),
      "timestamp": chunk["timestamp"].to_numpy(),
      "label": np.where(negative, 0.0, 1.0),
      "event": pd.Categorical.from_codes(negative.astype(np.int8),
                                         ["click", "dismiss"]),
      "item_type": pd.Categorical.from_codes(
          catalogue.is_video[chunk["item"]].astype(np.int8),
          ["item", "video"]),
      "query": pd.Categorical.from_codes(np.zeros(len(chunk), np.int8), [""]),
  }, columns=list(contract.INTERACTION_COLUMNS))
