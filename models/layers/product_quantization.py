"""Product quantisation (Jégou et al., TPAMI 2011) for approximate attention.

A vector of width `D` is cut into `M` subvectors of width `D / M`; each
subvector is replaced by the index of its nearest centroid in that subspace's
codebook of `K` centroids, so an item is stored as `M` small integers. The dot
product of a query with a quantised vector is the sum over subspaces of the
query subvector's dot product with the chosen centroid: one table of `M x K`
partial dot products per query ("lookup table") scores any number of codes
with `M` lookups each, without touching the original vectors.

Codebooks are trained once, offline, with k-means per subspace (NumPy); the
encode, decode and scoring functions are TensorFlow ops so that they can live
inside an exported serving graph.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _split(vectors: np.ndarray, num_subspaces: int) -> np.ndarray:
  """`[n, D]` -> `[M, n, D / M]`."""
  num_vectors, width = vectors.shape
  if width % num_subspaces:
    raise ValueError(f"width {width} is not divisible by {num_subspaces} "
                     "subspaces")
  return vectors.reshape(num_vectors, num_subspaces,
                         width // num_subspaces).transpose(1, 0, 2)


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
  """Index of the nearest centroid (squared Euclidean) of every point."""
  distances = (np.sum(centroids**2, axis=1)[np.newaxis] -
               2.0 * points @ centroids.T)
  return np.argmin(distances, axis=1)


def _kmeans(points: np.ndarray, num_centroids: int, iterations: int,
            rng: np.random.Generator) -> np.ndarray:
  """Lloyd's k-means initialised on distinct random points."""
  start = rng.choice(len(points), num_centroids, replace=False)
  centroids = points[start].copy()
  for _ in range(iterations):
    assignment = _nearest(points, centroids)
    sums = np.zeros_like(centroids)
    np.add.at(sums, assignment, points)
    counts = np.bincount(assignment, minlength=num_centroids)
    # A centroid that lost all its points keeps its position.
    filled = counts > 0
    centroids[filled] = sums[filled] / counts[filled, np.newaxis]
  return centroids


def train_codebooks(vectors: np.ndarray, num_subspaces: int,
                    num_centroids: int, iterations: int = 20,
                    seed: int = 0) -> np.ndarray:
  """Trains one k-means codebook per subspace.

  Args:
    vectors: `[n, D]` training vectors, `n >= num_centroids`.
    num_subspaces: `M`; `D` must be divisible by it.
    num_centroids: `K` centroids per subspace (at most 256 keeps codes in
      one byte).
    iterations: Lloyd iterations.
    seed: seeds the initial centroids.

  Returns:
    `[M, K, D / M]` float32 codebooks.
  """
  vectors = np.asarray(vectors, np.float64)
  if len(vectors) < num_centroids:
    raise ValueError(f"{len(vectors)} vectors cannot train {num_centroids} "
                     "centroids")
  rng = np.random.default_rng(seed)
  return np.stack([
      _kmeans(subvectors, num_centroids, iterations, rng)
      for subvectors in _split(vectors, num_subspaces)
  ]).astype(np.float32)


def encode(vectors: tf.Tensor, codebooks: tf.Tensor) -> tf.Tensor:
  """Nearest-centroid codes.

  Args:
    vectors: `[..., D]`.
    codebooks: `[M, K, D / M]`.

  Returns:
    `[..., M]` int32 codes.
  """
  codebooks = tf.convert_to_tensor(codebooks, tf.float32)
  vectors = tf.convert_to_tensor(vectors, tf.float32)
  num_subspaces = tf.shape(codebooks)[0]
  subvectors = tf.reshape(
      vectors, tf.concat([tf.shape(vectors)[:-1], [num_subspaces, -1]], 0))
  # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin.
  distances = (tf.reduce_sum(codebooks**2, axis=-1) -
               2.0 * tf.einsum("...md,mkd->...mk", subvectors, codebooks))
  return tf.argmin(distances, axis=-1, output_type=tf.int32)


def decode(codes: tf.Tensor, codebooks: tf.Tensor) -> tf.Tensor:
  """Reconstructs `[..., D]` vectors from `[..., M]` codes."""
  codebooks = tf.convert_to_tensor(codebooks, tf.float32)
  num_subspaces = tf.shape(codebooks)[0]
  codes = tf.cast(codes, tf.int32)
  # Subspace m's code k sits at row m * K + k of the flattened codebooks.
  offsets = tf.range(num_subspaces) * tf.shape(codebooks)[1]
  flat = tf.reshape(codebooks, [-1, tf.shape(codebooks)[2]])
  parts = tf.gather(flat, codes + offsets)
  return tf.reshape(parts, tf.concat([tf.shape(codes)[:-1], [-1]], 0))


def lookup_tables(queries: tf.Tensor, codebooks: tf.Tensor) -> tf.Tensor:
  """Partial dot products of every query subvector with every centroid.

  Args:
    queries: `[B, D]`.
    codebooks: `[M, K, D / M]`.

  Returns:
    `[B, M, K]`.
  """
  codebooks = tf.convert_to_tensor(codebooks, tf.float32)
  subqueries = tf.reshape(queries, [tf.shape(queries)[0],
                                    tf.shape(codebooks)[0], -1])
  return tf.einsum("bmd,mkd->bmk", subqueries, codebooks)


def lookup_scores(tables: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
  """Approximate dot products of each query with its rows of codes.

  Args:
    tables: `[B, M, K]` from `lookup_tables`.
    codes: `[B, L, M]` codes of the vectors to score for each query.

  Returns:
    `[B, L]`, equal to the dot product of the query with the decoded codes.

  Run as separate TF ops, the `[B, L, M]` int32 indices and float lookups
  are materialised, which costs about as much as gathering float keys;
  `xla_lookup_scores` fuses the index arithmetic, the lookups and the sum
  into one loop (`benchmarks/pq_attention.py` measures both).
  """
  num_subspaces = tf.shape(tables)[1]
  num_centroids = tf.shape(tables)[2]
  # Subspace m's code k sits at m * K + k of a query's flattened table. A
  # batched gather compiles to a loop about 2.5x faster under XLA than one
  # flat gather over every query's table (which is ~15% faster unfused).
  flat_codes = (tf.cast(codes, tf.int32) +
                tf.range(num_subspaces) * num_centroids)
  return tf.reduce_sum(
      tf.gather(tf.reshape(tables, [tf.shape(tables)[0], -1]), flat_codes,
                batch_dims=1), -1)


# XLA-compiled `lookup_scores`, several times faster on CPU. A SavedModel
# that calls it needs a runtime with XLA JIT: TensorFlow itself and this
# stack's server have it; TF Serving on CPU needs
# `--xla_cpu_compilation_enabled=true`.
xla_lookup_scores = tf.function(lookup_scores, jit_compile=True)
