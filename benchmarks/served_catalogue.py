"""The catalogue a served retrieval model searches, grown if asked.

A pushed model version (`pushed_version_dir`), the item vectors its ScaNN
index stores (`stored_item_embeddings`), and, for a larger database, those
vectors plus jittered copies (`grow_database`) written with a new index
beside a copy of the SavedModel (`grown_model_base`). Shared by
`benchmarks.serving_latency` and `benchmarks.scann_scale`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Sequence

import numpy as np

from benchmarks import common
from serving import scann_index

SYNTHETIC_ID_PREFIX = "synthetic-"
# The vectors ScaNN keeps for reordering, one row per id of item_ids.txt.
_STORED_VECTORS = os.path.join("searcher", "dataset.npy")
_STORED_IDS = "item_ids.txt"


def pushed_version_dir(path: str) -> str:
  """The model version a `--model-dir` names.

  Args:
    path: a pushed version directory (`<serving>/<model>/<version>`), a
      model directory holding numbered versions (the newest is taken), or a
      serving base path holding exactly one model directory.

  Raises:
    ValueError: if `path` is none of these.
  """
  if os.path.isfile(os.path.join(path, "saved_model.pb")):
    return path
  entries = sorted(os.listdir(path)) if os.path.isdir(path) else []
  versions = [name for name in entries if name.isdigit()]
  if versions:
    return os.path.join(path, max(versions, key=int))
  models = [name for name in entries
            if os.path.isdir(os.path.join(path, name))]
  if len(models) == 1:
    model_dir = os.path.join(path, models[0])
    versions = [name for name in os.listdir(model_dir) if name.isdigit()]
    if versions:
      return os.path.join(model_dir, max(versions, key=int))
  raise ValueError(f"{path} is neither a pushed model version, a model "
                   "directory of numbered versions, nor a serving base path "
                   "with one model")


def stored_item_embeddings(version_dir: str) -> tuple[list[str], np.ndarray]:
  """The item ids and vectors of a pushed model's ScaNN index.

  These are the pipeline's `candidate_embedding` outputs, as the index
  builder stored them (ScaNN keeps them to reorder its candidates).

  Raises:
    FileNotFoundError: if the version has no index (families without one,
      like `ease`, cannot serve `retrieve_scann`).
  """
  directory = scann_index.index_dir(version_dir)
  if not scann_index.has_index(version_dir):
    raise FileNotFoundError(f"no ScaNN index under {directory}: "
                            "retrieve_scann needs an indexed family")
  with open(os.path.join(directory, _STORED_IDS), encoding="utf-8") as f:
    item_ids = [line.rstrip("\n") for line in f]
  vectors = np.load(os.path.join(directory, _STORED_VECTORS))
  if vectors.shape[0] != len(item_ids):
    raise ValueError(f"{directory}: {vectors.shape[0]} stored vectors for "
                     f"{len(item_ids)} ids")
  return item_ids, np.ascontiguousarray(vectors, dtype=np.float32)


def grow_database(item_ids: Sequence[str], embeddings: np.ndarray, size: int,
                  noise_scale: float, seed: int
                  ) -> tuple[list[str], np.ndarray]:
  """The real items plus `size - len(item_ids)` synthetic ones around them.

  Each synthetic item copies a real item's vector v, drawn uniformly with
  replacement, adds Gaussian noise of per-coordinate standard deviation
  `noise_scale * |v| / sqrt(dim)` (a noise norm of about
  `noise_scale * |v|`) and rescales the sum to |v|: the grown database keeps
  the real norms, which dot-product retrieval is sensitive to, and the real
  directions up to the jitter. Synthetic ids are `SYNTHETIC_ID_PREFIX<n>`.

  Args:
    item_ids: the real ids, one per row of `embeddings`.
    embeddings: `[n, dim]` real item vectors.
    size: items wanted in all, at least n.
    noise_scale: noise norm relative to the vector's norm.
    seed: seeds the draws.

  Returns:
    `(ids, vectors)`: the real rows first, unchanged, then the synthetic ones.

  Raises:
    ValueError: if `size` < n, or a real id looks like a synthetic one.
  """
  real = np.asarray(embeddings, dtype=np.float32)
  count = size - len(item_ids)
  if count < 0:
    raise ValueError(f"cannot grow {len(item_ids)} items to {size}")
  if any(str(item_id).startswith(SYNTHETIC_ID_PREFIX) for item_id in item_ids):
    raise ValueError(f"a real item id starts with {SYNTHETIC_ID_PREFIX!r}")
  rng = np.random.default_rng(seed)
  base = real[rng.integers(len(real), size=count)]
  norms = np.linalg.norm(base, axis=1, keepdims=True)
  moved = base + rng.standard_normal(base.shape, dtype=np.float32) * (
      noise_scale * norms / np.sqrt(real.shape[1]))
  moved *= norms / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True),
                              np.finfo(np.float32).tiny)
  ids = list(item_ids) + [f"{SYNTHETIC_ID_PREFIX}{n}" for n in range(count)]
  return ids, np.concatenate([real, moved.astype(np.float32)])


def grown_model_base(version_dir: str, base_path: str, item_ids: list[str],
                     vectors: np.ndarray) -> dict:
  """Writes `<base>/<model>/<version>`: the pushed SavedModel, a new index.

  Returns:
    The index's build seconds and fitted parameters.
  """
  model_name = os.path.basename(os.path.dirname(version_dir))
  target = os.path.join(base_path, model_name, os.path.basename(version_dir))
  shutil.copytree(version_dir, target,
                  ignore=shutil.ignore_patterns("assets.extra"))
  started = time.perf_counter()
  index = scann_index.ScannIndex.build(vectors, item_ids,
                                       scann_index.ScannParams())
  build_s = time.perf_counter() - started
  index.write(target)
  return {"build_s": round(build_s, 1),
          "params": dataclasses.asdict(index.params)}


def index_disk_bytes(version_dir: str) -> int:
  """Bytes the ScaNN index of a model version takes on disk."""
  return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in
             os.walk(scann_index.index_dir(version_dir)) for name in names)


def served_database(version_dir: str, candidates: int, noise_scale: float,
                    seed: int, scratch: str):
  """The database to serve: the version's own, or grown to `candidates`.

  Args:
    version_dir: the pushed model version.
    candidates: items wanted in all; 0 serves the version's own index.
    noise_scale: `grow_database`'s.
    seed: `grow_database`'s.
    scratch: where a grown model base is written.

  Returns:
    `(served path, item ids, vectors, description)`: the model directory
    the server loads the version from, the database it searches, and what
    the benchmark's JSON says of it.
  """
  model_name = os.path.basename(os.path.dirname(version_dir))
  version = os.path.basename(version_dir)
  real_ids, real_vectors = stored_item_embeddings(version_dir)
  served_path = os.path.dirname(version_dir)
  database = {"real_items": len(real_ids), "dimension":
              real_vectors.shape[1],
              "index": "the pushed model's own (ScannIndexGen)"}
  item_ids, vectors = real_ids, real_vectors
  if candidates:
    item_ids, vectors = grow_database(real_ids, real_vectors, candidates,
                                      noise_scale, seed)
    base = os.path.join(scratch, "grown")
    database.update(
        synthetic_items=candidates - len(real_ids),
        noise_scale=noise_scale,
        growth=("each synthetic item: a uniformly drawn real item vector v "
                f"+ N(0, ({noise_scale} |v| / sqrt(dim))^2 I), "
                "rescaled to |v|"),
        index=("built here over the grown database with the pipeline's "
               "default ScannParams, fitted to its size"),
        **grown_model_base(version_dir, base, item_ids, vectors))
    served_path = os.path.join(base, model_name)
    database["index_disk_bytes"] = index_disk_bytes(
        os.path.join(served_path, version))
  else:
    database.update(index_disk_bytes=index_disk_bytes(version_dir),
                    params=dataclasses.asdict(
                        scann_index.ScannIndex.load(version_dir).params))
    common.log(f"grown database: {database}")
  database["items"] = len(item_ids)
  return served_path, item_ids, vectors, database
