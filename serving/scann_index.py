"""The ScaNN index artifact: building, writing, loading and searching.

An indexed retrieval model is one TF Serving version directory:

    <base>/<model_name>/<version>/
        saved_model.pb, variables/        plain-TF SavedModel (query tower etc.)
        assets.extra/scann_index/
            searcher/                     ScaNN's own serialization
            item_ids.txt                  one id per line, in database order
            index_config.json             parameters and sizes

Stock TF Serving ignores `assets.extra/`, so it serves the same directory as a
plain SavedModel; the CPU retrieval service in `serving/` also loads the index.
The version directory may be in object storage (`s3://...`): ScaNN reads local
files only, so `load` reads a local scratch copy (the index builder likewise
writes locally, then copies).
ScaNN's tree + asymmetric hashing + reordering are all single-machine, so the
index itself is built on one worker.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from typing import Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

from data import storage
from serving import multi_vector

INDEX_SUBDIR = os.path.join("assets.extra", "scann_index")
_SEARCHER_DIR = "searcher"
_IDS_FILE = "item_ids.txt"
_CONFIG_FILE = "index_config.json"
_ASSETS_FILE = "scann_assets.pbtxt"
# What `ScannParams.fitted_to` fills in. Sweep on grown vectors
# (results/serving_1m_sweep.json, 300 real users' queries): reorder_k is what
# recall@100 needs among near-tied items (at 1M, 5% of leaves searched: 0.81
# at reorder 250, 0.93 at 500, 0.98 at 1000); 10% of the leaves is the least
# fraction that keeps recall@100 >= 0.97 at both 100k (0.993; 5%: 0.967) and
# 1M (0.982), for about 1 ms of CPU per query at 1M. On vectors of models the
# pipeline trained, a few hundred leaves need more of them searched
# (results/scann_trained_{20k,100k}_sweep.json): 10% gave 0.902 at 20k items
# (141 leaves) and 0.919 at 80k (282), while 43 and 57 leaves gave 0.989 and
# 0.972; the 1M-item model's index (546 leaves, 55 searched) served 0.988.
# So at least 60 leaves are searched.
FITTED_SEARCH_FRACTION = 0.1
FITTED_MIN_LEAVES_TO_SEARCH = 60
FITTED_REORDER_K = 1000


@dataclasses.dataclass(frozen=True)
class ScannParams:
  """ScaNN searcher parameters (tree + asymmetric hashing + reordering).

  Attributes:
    num_leaves: tree partitions; 0 (the default) fits them to the catalogue,
      about sqrt(#items). An explicit value is capped at sqrt(#items).
    num_leaves_to_search: partitions probed per query; 0 (the default) fits
      them to the catalogue (see `fitted_to`).
    training_sample_size: points used to train the tree; capped at #items.
    dimensions_per_block: AH sub-space size.
    anisotropic_quantization_threshold: AH's anisotropic loss threshold.
    reorder_k: candidates re-scored exactly before the final top k; 0 (the
      default) fits it to the catalogue. Never below the k asked for.
    default_k: neighbours returned when the caller gives no k.
    neighbors_per_vector: for multi-vector queries, the neighbours each of a
      user's K vectors fetches before the merge (N); at least the k asked
      for, which is also the default (0). See `serving.multi_vector`.
    merge_rule: how a multi-vector user's K lists merge, one of
      `serving.multi_vector.MERGE_RULES`; "max" ranks by the best score.
  """
  num_leaves: int = 0
  num_leaves_to_search: int = 0
  training_sample_size: int = 250_000
  dimensions_per_block: int = 2
  anisotropic_quantization_threshold: float = 0.2
  reorder_k: int = 0
  default_k: int = 100
  neighbors_per_vector: int = 0
  merge_rule: str = multi_vector.MAX

  def __post_init__(self):
    multi_vector.check_merge_rule(self.merge_rule)
    for name in ("num_leaves", "num_leaves_to_search", "reorder_k",
                 "neighbors_per_vector"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

  def fitted_to(self, num_items: int) -> "ScannParams":
    """The parameters for a catalogue of `num_items`, as the index uses them.

    Values left at 0 follow ScaNN's guidance, with the fractions chosen by
    the sweep of `benchmarks.scann_scale` (results/serving_1m_sweep.json):
    about sqrt(n) leaves; FITTED_SEARCH_FRACTION of them searched, at least
    FITTED_MIN_LEAVES_TO_SEARCH; FITTED_REORDER_K candidates reordered.
    Explicit values are kept, the leaves capped at sqrt(n) so that every
    leaf can hold items.
    """
    max_leaves = max(1, int(math.sqrt(num_items)))
    num_leaves = min(self.num_leaves or max_leaves, max_leaves)
    num_leaves_to_search = self.num_leaves_to_search or max(
        FITTED_MIN_LEAVES_TO_SEARCH,
        math.ceil(FITTED_SEARCH_FRACTION * num_leaves))
    return dataclasses.replace(
        self,
        num_leaves=num_leaves,
        num_leaves_to_search=max(1, min(num_leaves_to_search, num_leaves)),
        training_sample_size=min(self.training_sample_size, num_items),
        reorder_k=max(self.reorder_k or FITTED_REORDER_K, self.default_k,
                      self.neighbors_per_vector))


def index_dir(model_version_dir: str) -> str:
  return os.path.join(model_version_dir, INDEX_SUBDIR)


def has_index(model_version_dir: str) -> bool:
  return storage.isfile(storage.join(index_dir(model_version_dir), _CONFIG_FILE))


def _load_relocated_searcher(searcher_dir: str):
  """Loads a serialized searcher wherever its directory now lives.

  ScaNN records absolute asset paths at serialization time, so a pushed or
  copied index would still read the files it was built from. The searcher is
  loaded from a scratch directory of links whose asset list points at
  `searcher_dir`, which may itself be read-only.
  """
  import scann  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from scann.scann_ops import scann_assets_pb2  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory(prefix="scann_searcher_") as scratch:
    for name in os.listdir(searcher_dir):
      os.symlink(os.path.join(os.path.abspath(searcher_dir), name),
                 os.path.join(scratch, name))
    assets_path = os.path.join(scratch, _ASSETS_FILE)
    with open(assets_path, encoding="utf-8") as f:
      assets = text_format.Parse(f.read(), scann_assets_pb2.ScannAssets())
    for asset in assets.assets:
      asset.asset_path = os.path.join(os.path.abspath(searcher_dir),
                                      os.path.basename(asset.asset_path))
    os.remove(assets_path)
    with open(assets_path, "w", encoding="utf-8") as f:
      f.write(text_format.MessageToString(assets))
    return scann.scann_ops_pybind.load_searcher(scratch)


class ScannIndex:
  """A loaded ScaNN searcher with its item ids."""

  def __init__(self, searcher, item_ids: Sequence[str], dimension: int,
               params: ScannParams):
    self._searcher = searcher
    self.item_ids = np.asarray(item_ids, dtype=object)
    self.dimension = dimension
    self.params = params

  @classmethod
  def build(cls, embeddings: np.ndarray, item_ids: Sequence[str],
            params: ScannParams = ScannParams()) -> "ScannIndex":
    """Builds a dot-product searcher over `embeddings` (one row per item)."""
    import scann  # pylint: disable=g-import-not-at-top
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(item_ids):
      raise ValueError(f"need one embedding row per item id, got "
                       f"{embeddings.shape} for {len(item_ids)} ids")
    if embeddings.shape[0] == 0:
      raise ValueError("cannot build an index over zero items")
    fitted = params.fitted_to(embeddings.shape[0])
    builder = scann.scann_ops_pybind.builder(embeddings, fitted.default_k,
                                             "dot_product")
    if fitted.num_leaves > 1:
      builder = builder.tree(num_leaves=fitted.num_leaves,
                             num_leaves_to_search=fitted.num_leaves_to_search,
                             training_sample_size=fitted.training_sample_size)
    searcher = (builder.score_ah(
        fitted.dimensions_per_block,
        anisotropic_quantization_threshold=fitted.anisotropic_quantization_threshold)
                .reorder(fitted.reorder_k).build())
    return cls(searcher, list(item_ids), embeddings.shape[1], fitted)

  def searching_with(self, num_leaves_to_search: int,
                     reorder_k: int) -> "ScannIndex":
    """This index, searching `num_leaves_to_search` leaves and reordering
    `reorder_k` candidates (ScaNN takes both at search time; the searcher is
    shared, not copied)."""
    return ScannIndex(self._searcher, self.item_ids, self.dimension,
                      dataclasses.replace(
                          self.params, reorder_k=reorder_k,
                          num_leaves_to_search=num_leaves_to_search))

  def write(self, model_version_dir: str) -> str:
    """Writes the index under `model_version_dir`; returns its directory."""
    directory = index_dir(model_version_dir)
    searcher_dir = os.path.join(directory, _SEARCHER_DIR)
    os.makedirs(searcher_dir, exist_ok=True)
    self._searcher.serialize(searcher_dir)
    with open(os.path.join(directory, _IDS_FILE), "w", encoding="utf-8") as f:
      f.writelines(f"{item_id}\n" for item_id in self.item_ids)
    with open(os.path.join(directory, _CONFIG_FILE), "w", encoding="utf-8") as f:
      json.dump({"dimension": self.dimension, "num_items": len(self.item_ids),
                 "distance": "dot_product",
                 "params": dataclasses.asdict(self.params)}, f, indent=2)
    return directory

  @classmethod
  def load(cls, model_version_dir: str) -> "ScannIndex":
    """Loads the index of a model version directory.

    Raises:
      FileNotFoundError: if the directory holds no index.
    """
    if storage.is_remote(model_version_dir):
      if not has_index(model_version_dir):
        raise FileNotFoundError(f"no ScaNN index at {index_dir(model_version_dir)}")
      with tempfile.TemporaryDirectory(prefix="scann_index_") as scratch:
        storage.download_dir(index_dir(model_version_dir), index_dir(scratch))
        return cls.load(scratch)
    directory = index_dir(model_version_dir)
    config_path = os.path.join(directory, _CONFIG_FILE)
    if not os.path.isfile(config_path):
      raise FileNotFoundError(f"no ScaNN index at {directory}")
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
    with open(os.path.join(directory, _IDS_FILE), encoding="utf-8") as f:
      item_ids = [line.rstrip("\n") for line in f]
    searcher = _load_relocated_searcher(os.path.join(directory, _SEARCHER_DIR))
    return cls(searcher, item_ids, config["dimension"],
               ScannParams(**config["params"]))

  def search(self, queries: np.ndarray, k: int,
             exclude_ids: Optional[Iterable[Iterable[str]]] = None):
    """Top-k items per user, optionally excluding given ids per user.

    Args:
      queries: `[batch, dimension]` query embeddings, or `[batch, vectors,
        dimension]` for multi-vector users: each vector then fetches
        `max(k, params.neighbors_per_vector)` neighbours and the lists merge
        by `params.merge_rule` (see `serving.multi_vector`).
      k: items per user, at most the number of items.
      exclude_ids: per user, ids that must not be returned (e.g. history).

    Returns:
      `(ids, scores)`, `[batch, k]` arrays; rows are padded with "" and -inf
      when exclusions leave fewer than k items.
    """
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim not in (2, 3) or queries.shape[-1] != self.dimension:
      raise ValueError(f"queries must be [batch, {self.dimension}] or [batch, "
                       f"vectors, {self.dimension}], got {list(queries.shape)}")
    if not 1 <= k <= len(self.item_ids):
      raise ValueError(f"k must be in [1, {len(self.item_ids)}], got {k}")
    excludes = [set(ids) for ids in exclude_ids] if exclude_ids is not None else [
        set() for _ in range(queries.shape[0])]
    if queries.ndim == 2:
      return self._search_vectors(queries, k, excludes)
    batch_size, num_vectors, _ = queries.shape
    depth = min(len(self.item_ids), max(k, self.params.neighbors_per_vector))
    ids, scores = self._search_vectors(
        queries.reshape(batch_size * num_vectors, self.dimension), depth,
        [exclude for exclude in excludes for _ in range(num_vectors)])
    merged_ids, merged_scores = multi_vector.merge_neighbours(
        ids.astype(str).reshape(batch_size, num_vectors, depth),
        scores.reshape(batch_size, num_vectors, depth),
        tf.constant(k, tf.int32), self.params.merge_rule)
    decode = np.vectorize(lambda item_id: item_id.decode("utf-8"),
                          otypes=[object])
    return decode(merged_ids.numpy()), merged_scores.numpy()

  def _search_vectors(self, queries: np.ndarray, k: int,
                      excludes: Sequence[set[str]]):
    """`search` for one vector per row; `excludes` has one set per row."""
    fetch = min(len(self.item_ids), k + max((len(e) for e in excludes), default=0))
    neighbors, distances = self._searcher.search_batched(
        queries, final_num_neighbors=fetch,
        pre_reorder_num_neighbors=max(self.params.reorder_k, fetch),
        # Searched leaves are a search-time setting: a loaded index searches as
        # its params say. A one-leaf index has no tree to search.
        leaves_to_search=(self.params.num_leaves_to_search
                          if self.params.num_leaves > 1 else None))
    ids = np.full((queries.shape[0], k), "", dtype=object)
    scores = np.full((queries.shape[0], k), -np.inf, dtype=np.float32)
    for row, (row_neighbors, row_scores, exclude) in enumerate(
        zip(neighbors, distances, excludes)):
      kept = [(self.item_ids[n], s) for n, s in zip(row_neighbors, row_scores)
              if self.item_ids[n] not in exclude][:k]
      for column, (item_id, score) in enumerate(kept):
        ids[row, column] = item_id
        scores[row, column] = score
    return ids, scores
