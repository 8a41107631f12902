"""GMN's dual graph: per user, bounded video and item neighbour lists.

The input is a contract interaction log whose `item_type` column is "video" or
"item". Videos and items share one node index space (0 = padding, videos
first, so video indices are `1..num_videos` and can be scored as a catalogue
on their own). Each user's neighbours on each side are bounded by a cap,
keeping the most recent ones or a seeded uniform sample, and listed oldest
first.

`transforms.dual_graph` is the same split inside the TFX Transform graph, where
the user's time-ordered history is the neighbourhood.

Evaluation holds out a seeded share of the video interactions of every user
with at least two videos, or of the users active on both sides only
(`split_user_videos`); the held-out videos stay in the node vocabulary, since
they are candidates, but not in any neighbour list. `user_slices` groups the
evaluated users by their train graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data import splits

VIDEO = "video"
ITEM = "item"
ORDER_RECENT = "recent"
ORDER_SAMPLED = "sampled"


@dataclasses.dataclass(frozen=True)
class DualGraphConfig:
  """How neighbour lists are bounded.

  Attributes:
    max_video_neighbours: cap on each user's video neighbours.
    max_item_neighbours: cap on each user's item neighbours.
    neighbour_order: "recent" keeps the newest neighbours, "sampled" a
      uniform sample without replacement.
    seed: seed of the "sampled" bound.
  """
  max_video_neighbours: int = 32
  max_item_neighbours: int = 32
  neighbour_order: str = ORDER_RECENT
  seed: int = 0

  def __post_init__(self):
    if self.neighbour_order not in (ORDER_RECENT, ORDER_SAMPLED):
      raise ValueError(f"neighbour_order must be {ORDER_RECENT!r} or "
                       f"{ORDER_SAMPLED!r}, got {self.neighbour_order!r}")


@dataclasses.dataclass(frozen=True)
class NodeVocabulary:
  """Node ids in index order: index i + 1 is `node_ids[i]`.

  Attributes:
    node_ids: videos first, then items, each sorted.
    num_videos: videos take indices `1..num_videos`.
  """
  node_ids: np.ndarray
  num_videos: int

  @property
  def size(self) -> int:
    """Embedding rows: nodes plus padding."""
    return len(self.node_ids) + 1

  def lookup(self, item_ids) -> np.ndarray:
    return _positions(self.node_ids, item_ids, "node vocabulary") + 1


@dataclasses.dataclass(frozen=True)
class DualGraph:
  """Bounded neighbour lists of every user.

  Attributes:
    user_ids: `[U]` user ids; row u of the lists belongs to `user_ids[u]`.
    video_neighbours: `[U, max_video_neighbours]` node indices, 0-padded.
    item_neighbours: `[U, max_item_neighbours]` node indices, 0-padded.
  """
  user_ids: np.ndarray
  video_neighbours: np.ndarray
  item_neighbours: np.ndarray

  def user_rows(self, user_ids) -> np.ndarray:
    return _positions(self.user_ids, user_ids, "dual graph")


def node_vocabulary(interactions: pd.DataFrame) -> NodeVocabulary:
  """Every video and item of the log, videos first."""
  _check_item_types(interactions)
  videos = np.sort(interactions.loc[interactions["item_type"] == VIDEO,
                                    "item_id"].unique())
  items = np.sort(interactions.loc[interactions["item_type"] == ITEM,
                                   "item_id"].unique())
  if np.intersect1d(videos, items).size:
    raise ValueError("an item id is both a video and an item; give each "
                     "domain its own ids")
  return NodeVocabulary(np.concatenate([videos, items]), len(videos))


def bounded_neighbours(user_rows: np.ndarray, node_indices: np.ndarray,
                       order_keys: np.ndarray, num_users: int, cap: int,
                       order: str = ORDER_RECENT, seed: int = 0) -> np.ndarray:
  """Per user, at most `cap` neighbours, oldest first, 0-padded on the right.

  Args:
    user_rows: `[E]` row of each edge's user.
    node_indices: `[E]` node index of each edge.
    order_keys: `[E]` time (or file position) of each edge; ties keep input
      order.
    num_users: rows of the output.
    cap: columns of the output.
    order: "recent" keeps each user's last `cap` edges, "sampled" a uniform
      sample of `cap` edges.
    seed: seed of the sample.

  Returns:
    `[num_users, cap]` int64 node indices.
  """
  edges = pd.DataFrame({"user": user_rows, "node": node_indices,
                        "key": order_keys})
  if order == ORDER_SAMPLED:
    rng = np.random.default_rng(seed)
    edges["draw"] = rng.random(len(edges))
    rank = edges.groupby("user")["draw"].rank(method="first", ascending=False)
  else:
    edges = edges.sort_values(["user", "key"], kind="stable")
    rank = edges.groupby("user").cumcount(ascending=False) + 1
  kept = edges[rank <= cap].sort_values(["user", "key"], kind="stable")
  columns = kept.groupby("user").cumcount().to_numpy()
  neighbours = np.zeros((num_users, cap), np.int64)
  neighbours[kept["user"].to_numpy(), columns] = kept["node"].to_numpy()
  return neighbours


def build_dual_graph(interactions: pd.DataFrame, vocabulary: NodeVocabulary,
                     config: DualGraphConfig,
                     user_ids: np.ndarray | None = None) -> DualGraph:
  """Neighbour lists of every user of `interactions` (or of `user_ids`).

  Args:
    interactions: contract columns `user_id`, `item_id`, `timestamp`,
      `item_type`; only these edges become neighbours.
    vocabulary: the node vocabulary (from the whole log).
    config: the caps and bounding order.
    user_ids: rows of the output; defaults to the log's users, sorted.

  Returns:
    The dual graph.
  """
  _check_item_types(interactions)
  if user_ids is None:
    user_ids = np.sort(interactions["user_id"].unique())
  user_ids = np.asarray(user_ids)
  sides = {}
  for item_type, cap in ((VIDEO, config.max_video_neighbours),
                         (ITEM, config.max_item_neighbours)):
    edges = interactions[interactions["item_type"] == item_type]
    sides[item_type] = bounded_neighbours(
        _positions(user_ids, edges["user_id"], "users"),
        vocabulary.lookup(edges["item_id"]), edges["timestamp"].to_numpy(),
        len(user_ids), cap, config.neighbour_order, config.seed)
  return DualGraph(user_ids, sides[VIDEO], sides[ITEM])


def shared_users(interactions: pd.DataFrame) -> np.ndarray:
  """Users with both video and item interactions, sorted."""
  types_per_user = interactions.groupby("user_id")["item_type"].nunique()
  return np.sort(types_per_user.index[types_per_user == 2].to_numpy())


def split_user_videos(interactions: pd.DataFrame, fraction: float, seed: int,
                      shared_only: bool = False
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
  """Holds out a seeded share of each user's video interactions.

  The data has no usable time, so each user with at least two videos loses
  a random `fraction` of them (at least one, keeping at least one); users
  with one video, and every item interaction, stay in train.

  Args:
    interactions: the contract log, `item_type` "video" or "item".
    fraction: share of each user's videos to hold out, in (0, 1).
    seed: the sampling seed.
    shared_only: hold out only from the users active on both sides
      (`shared_users`), CDRIB's evaluation users.

  Returns:
    `(train_log, heldout_videos)`.
  """
  _check_item_types(interactions)
  is_video = interactions["item_type"] == VIDEO
  video_train, heldout = splits.random_holdout(
      interactions[is_video], "user_id", fraction, seed,
      users=shared_users(interactions) if shared_only else None)
  train = pd.concat([video_train, interactions[~is_video]]).sort_index()
  return train, heldout


# Evaluation slices of users by their train graph: the number of train
# videos (bins' lower bounds) and whether they have any item at all. The
# paper's case, a thin video history beside a product one, is the first bin
# with items.
VIDEO_COUNT_BINS = (0, 3, 10)
SLICE_ALL = "all"
SLICE_THIN_WITH_ITEMS = "videos 0-2, with items"


def _bin_names(bins) -> list[str]:
  return [f"videos {low}-{high - 1}" for low, high in zip(bins, bins[1:])] + [
      f"videos {bins[-1]}+"]


def user_slices(train: pd.DataFrame, user_ids) -> dict[str, np.ndarray]:
  """Which of `user_ids` falls in each evaluation slice.

  Args:
    train: the train log the users are described by.
    user_ids: `[U]` the evaluated users.

  Returns:
    Slice name -> `[U]` bool: "all", one "videos a-b" per bin of
    `VIDEO_COUNT_BINS`, "with items", "without items" and
    `SLICE_THIN_WITH_ITEMS`.
  """
  _check_item_types(train)
  user_ids = pd.Index(np.asarray(user_ids))
  counts = train.groupby(["user_id", "item_type"]).size().unstack(
      fill_value=0).reindex(index=user_ids, columns=[VIDEO, ITEM],
                            fill_value=0)
  videos, has_items = counts[VIDEO].to_numpy(), counts[ITEM].to_numpy() > 0
  bins = np.searchsorted(VIDEO_COUNT_BINS, videos, side="right") - 1
  slices = {SLICE_ALL: np.ones(len(user_ids), bool)}
  slices.update({name: bins == position
                 for position, name in enumerate(_bin_names(VIDEO_COUNT_BINS))})
  slices.update({"with items": has_items, "without items": ~has_items,
                 SLICE_THIN_WITH_ITEMS: (bins == 0) & has_items})
  return slices


def _positions(values: np.ndarray, wanted, what: str) -> np.ndarray:
  positions = pd.Index(values).get_indexer(pd.Series(wanted).to_numpy())
  if (positions < 0).any():
    raise KeyError(f"ids missing from the {what}")
  return positions.astype(np.int64)


def _check_item_types(interactions: pd.DataFrame) -> None:
  unknown = set(interactions["item_type"].unique()) - {VIDEO, ITEM}
  if unknown:
    raise ValueError(f"item_type must be {VIDEO!r} or {ITEM!r}; found {sorted(unknown)}")
