"""A pushed retrieval model's item vectors and real users' query embeddings.

The database is the item embeddings stored in the model's ScaNN index; the
queries are `query_embedding` outputs for real users of the dataset (their
last items before their last interaction as history), or, without a dataset,
noisy item embeddings. Shared by `benchmarks.ann` and
`benchmarks.scann_scale`.
"""

from __future__ import annotations

import collections
import os
import pathlib
from typing import Optional

import numpy as np
import pandas as pd

from data import contract
from models import serving_names

HISTORY_LENGTH = 50  # The pipeline's default `history_length`.


def workspace_dataset(model_dir: str) -> Optional[contract.Dataset]:
  """The contract directory a pipeline run wrote into its workspace:
  `<workspace>/datasets/<name>` of a `<workspace>/serving/<m>/<v>` dir."""
  workspace = pathlib.Path(model_dir).resolve().parents[2]
  found = sorted(workspace.glob("datasets/*/interactions.*"))
  return contract.load_dataset(found[0].parent) if found else None


def _user_requests(interactions: pd.DataFrame, num_users: int, seed: int):
  """Real request features: per sampled user, history before the last event.

  Returns:
    `(user_ids, histories, timestamps)`.
  """
  events = collections.defaultdict(list)
  for user, timestamp, item in zip(interactions["user_id"],
                                   interactions["timestamp"],
                                   interactions["item_id"]):
    events[user].append((int(timestamp), item))
  users = sorted(user for user, rows in events.items() if len(rows) >= 2)
  rng = np.random.default_rng(seed)
  chosen = rng.choice(len(users), size=min(num_users, len(users)),
                      replace=False)
  user_ids, histories, timestamps = [], [], []
  for index in chosen:
    rows = sorted(events[users[index]])
    user_ids.append(users[index])
    histories.append([item for _, item in rows[:-1]][-HISTORY_LENGTH:])
    timestamps.append(rows[-1][0])
  return user_ids, histories, timestamps


def _pad(rows: list[list[str]]) -> list[list[str]]:
  width = max(1, max(len(row) for row in rows))
  return [row + [""] * (width - len(row)) for row in rows]


def real_model_inputs(model_dir: str, dataset: Optional[contract.Dataset],
                      num_queries: int, seed: int):
  """Database, ids, queries and a description of where they came from."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from serving import scann_index  # pylint: disable=g-import-not-at-top
  index_dir = scann_index.index_dir(model_dir)
  with open(os.path.join(index_dir, "item_ids.txt"), encoding="utf-8") as f:
    item_ids = [line.rstrip("\n") for line in f]
  database = np.load(os.path.join(index_dir, "searcher", "dataset.npy"))
  database = np.ascontiguousarray(database, dtype=np.float32)
  if database.shape[0] != len(item_ids):
    raise ValueError(f"{index_dir}: {database.shape[0]} stored vectors for "
                     f"{len(item_ids)} ids")
  notes = {"database": "the vectors stored in the model's ScaNN index "
                       "(searcher/dataset.npy), in item_ids.txt order"}
  model = tf.saved_model.load(model_dir)
  if dataset is not None and dataset.items is not None:
    items = dataset.items.set_index("item_id")
    known = [item_id for item_id in item_ids if item_id in items.index]
    categories = _pad([[c for c in items.at[i, "category"].split(
        contract.LIST_SEPARATOR) if c] for i in known])
    embedded = model.signatures[serving_names.CANDIDATE_EMBEDDING](
        item_id=tf.constant(known),
        item_title=tf.constant([items.at[i, "title"] for i in known]),
        item_categories=tf.constant(categories, tf.string))[
            serving_names.EMBEDDING].numpy()
    rows = [item_ids.index(i) for i in known]
    notes["candidate_embedding_check"] = (
        f"candidate_embedding of {len(known)} items of the dataset: max "
        f"|diff| vs stored vectors "
        f"{float(np.max(np.abs(embedded - database[rows]))):.2e}")
  if dataset is not None:
    user_ids, histories, timestamps = _user_requests(dataset.interactions,
                                                     num_queries, seed)
    queries = model.signatures[serving_names.QUERY_EMBEDDING](
        user_id=tf.constant(user_ids),
        history_item_ids=tf.constant(_pad(histories), tf.string),
        timestamp=tf.constant(timestamps, tf.int64))[
            serving_names.EMBEDDING].numpy()
    notes["queries"] = (
        f"query_embedding of {len(user_ids)} random real users of the "
        f"dataset: history = their last {HISTORY_LENGTH} items "
        "before their last interaction, timestamp = that interaction's")
  else:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(database), size=min(num_queries, len(database)),
                      replace=False)
    scale = float(np.mean(np.linalg.norm(database, axis=1))) / np.sqrt(
        database.shape[1])
    queries = database[rows] + 0.3 * scale * rng.normal(
        size=(len(rows), database.shape[1]))
    notes["queries"] = (
        f"NOT real users (no dataset found): {len(rows)} random item "
        "embeddings plus Gaussian noise (0.3 x mean per-dimension scale)")
  return database, item_ids, np.ascontiguousarray(queries, np.float32), notes
