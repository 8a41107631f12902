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
"""

from __future__ import annotations

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
