"""Item content vectors: the input of content encoders such as COURIER's.

No real item images exist for the bundled data sets, so an item's content is
built from what the data holds:

- text and attribute tokens (MovieLens: title words, genres, release decade
  and Freebase KG relation:entity pairs; Amazon Grocery: category words and
  the categories of related items), as a TF-IDF bag reduced by truncated SVD
  (latent semantic analysis) when the vocabulary is larger than `token_dim`;
- item-to-item relations (Amazon Grocery: complement = also-bought,
  substitute = also-viewed), as a truncated SVD of each relation's symmetric,
  degree-normalised adjacency matrix;
- optionally an external `item_id -> vector` file (for example image
  embeddings), read by `load_external_vectors`.

Every block is L2-normalised per item so that no block dominates by scale.
Row 0 (padding) and items without content are zero vectors.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

EXTERNAL_ID_COLUMN = "item_id"
EXTERNAL_VECTOR_COLUMN = "vector"


def _l2_normalize_rows(matrix: np.ndarray) -> np.ndarray:
  norms = np.linalg.norm(matrix, axis=1, keepdims=True)
  return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _truncated_svd(matrix: sparse.spmatrix, dim: int, seed: int) -> np.ndarray:
  """Rows of `matrix` projected on its top `dim` right singular vectors."""
  dim = min(dim, min(matrix.shape) - 1)
  start = np.random.default_rng(seed).uniform(-1, 1, min(matrix.shape))
  left, singular_values, _ = sparse_linalg.svds(matrix.astype(np.float64), k=dim,
                                                v0=start)
  order = np.argsort(-singular_values)
  return (left[:, order] * singular_values[order]).astype(np.float32)


def token_vectors(item_tokens: np.ndarray, num_tokens: int, token_dim: int = 128,
                  seed: int = 0) -> np.ndarray:
  """TF-IDF bags of tokens, reduced to `token_dim` by truncated SVD if larger.

  Args:
    item_tokens: `[num_items, length]` token indices, 0 = padding.
    num_tokens: size of the token vocabulary, padding included.
    token_dim: the largest output width.
    seed: seed of the SVD's start vector.

  Returns:
    `[num_items, min(num_tokens - 1, token_dim)]` L2-normalised rows.
  """
  rows = np.repeat(np.arange(item_tokens.shape[0]), item_tokens.shape[1])
  tokens = item_tokens.reshape(-1)
  real = tokens > 0
  counts = sparse.csr_matrix(
      (np.ones(int(real.sum()), np.float32), (rows[real], tokens[real] - 1)),
      shape=(item_tokens.shape[0], num_tokens - 1))
  document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
  inverse_frequency = np.log((1.0 + counts.shape[0]) / (1.0 + document_frequency)) + 1.0
  tf_idf = sparse.csr_matrix(counts.multiply(inverse_frequency[np.newaxis, :]))
  if tf_idf.shape[1] <= token_dim:
    return _l2_normalize_rows(tf_idf.toarray().astype(np.float32))
  return _l2_normalize_rows(_truncated_svd(tf_idf, token_dim, seed))


def relation_vectors(num_items: int, pairs: np.ndarray, dim: int = 32,
                     seed: int = 0) -> np.ndarray:
  """Spectral item vectors of one item-to-item relation.

  Args:
    num_items: item indices, padding included.
    pairs: `[n, 2]` item-index pairs; the relation is used symmetrically.
    dim: output width.
    seed: seed of the SVD's start vector.

  Returns:
    `[num_items, dim]` L2-normalised rows; items without relations are zero.
  """
  heads = np.concatenate([pairs[:, 0], pairs[:, 1]])
  tails = np.concatenate([pairs[:, 1], pairs[:, 0]])
  adjacency = sparse.csr_matrix(
      (np.ones(len(heads), np.float32), (heads, tails)), shape=(num_items, num_items))
  # Duplicate pairs count once. A self-loop on every related item makes a
  # pair of items similar rather than opposite (the spectrum of a bipartite
  # pair is +1 and -1); items without relations stay zero.
  adjacency.data[:] = 1.0
  related = np.flatnonzero(np.asarray(adjacency.sum(axis=1)).ravel())
  adjacency = adjacency + sparse.csr_matrix(
      (np.ones(len(related), np.float32), (related, related)),
      shape=(num_items, num_items))
  degree = np.asarray(adjacency.sum(axis=1)).ravel()
  scale = sparse.diags(np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1)), 0.0))
  return _l2_normalize_rows(_truncated_svd(scale @ adjacency @ scale, dim, seed))


def load_external_vectors(path: str | os.PathLike, item_ids: Sequence[str]
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Reads an `item_id -> vector` file and aligns it to `item_ids`.

  Formats, chosen by the file extension:
    - `.parquet`: columns `item_id` (string) and `vector` (list of floats);
    - `.npy`: a structured array with fields `item_id` and `vector`
      (loaded without pickle);
    - `.npz`: arrays `item_id` `[n]` and `vector` `[n, dim]`.

  Args:
    path: the file.
    item_ids: raw ids, one per item index; ids missing from the file, and the
      padding entry "", get a zero vector.

  Returns:
    `([len(item_ids), dim] float32 vectors, [len(item_ids)] bool found)`.
  """
  extension = os.path.splitext(str(path))[1].lower()
  if extension == ".parquet":
    frame = pd.read_parquet(path, columns=[EXTERNAL_ID_COLUMN, EXTERNAL_VECTOR_COLUMN])
    ids = frame[EXTERNAL_ID_COLUMN].astype(str).to_numpy()
    vectors = np.stack(frame[EXTERNAL_VECTOR_COLUMN].to_numpy())
  elif extension in (".npy", ".npz"):
    loaded = np.load(path, allow_pickle=False)
    ids = loaded[EXTERNAL_ID_COLUMN].astype(str)
    vectors = np.asarray(loaded[EXTERNAL_VECTOR_COLUMN])
  else:
    raise ValueError(f"unsupported external vector file {path}: expected "
                     ".parquet, .npy or .npz")
  if vectors.ndim != 2 or len(vectors) != len(ids):
    raise ValueError(f"{path}: expected one vector per id, got vectors of shape "
                     f"{vectors.shape} for {len(ids)} ids")
  row_of_id = {item_id: row for row, item_id in enumerate(ids)}
  rows = np.array([row_of_id.get(str(item_id), -1) if item_id else -1
                   for item_id in item_ids])
  found = rows >= 0
  aligned = np.zeros((len(item_ids), vectors.shape[1]), np.float32)
  aligned[found] = vectors[rows[found]]
  return aligned, found


def content_vectors(item_tokens: np.ndarray, num_tokens: int,
                    item_relations: Mapping[str, np.ndarray] | None = None,
                    external: np.ndarray | None = None, token_dim: int = 128,
                    relation_dim: int = 32, seed: int = 0) -> np.ndarray:
  """An item's whole content vector: tokens, relations and external vectors.

  Args:
    item_tokens: `[num_items, length]` token indices, 0 = padding.
    num_tokens: token vocabulary size, padding included.
    item_relations: relation name -> `[n, 2]` item-index pairs.
    external: `[num_items, dim]` aligned external vectors (see
      `load_external_vectors`).
    token_dim: width of the token block.
    relation_dim: width of each relation block.
    seed: SVD seed.

  Returns:
    `[num_items, width]` float32; row 0 (padding) is zero.
  """
  blocks = [token_vectors(item_tokens, num_tokens, token_dim, seed)]
  for name in sorted(item_relations or {}):
    blocks.append(relation_vectors(item_tokens.shape[0], item_relations[name],
                                   relation_dim, seed))
  if external is not None:
    blocks.append(_l2_normalize_rows(external.astype(np.float32)))
  vectors = np.concatenate(blocks, axis=1)
  vectors[0] = 0.0
  return vectors
