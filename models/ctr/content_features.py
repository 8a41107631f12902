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
  embeddings), read by `data.item_vectors.load_item_vectors`.

Every block is L2-normalised per item so that no block dominates by scale.
Row 0 (padding) and items without content are zero vectors.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg



def l2_normalize_rows(matrix: np.ndarray) -> np.ndarray:
  """Rows scaled to unit length; an all-zero row stays zero."""
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
    return l2_normalize_rows(tf_idf.toarray().astype(np.float32))
  return l2_normalize_rows(_truncated_svd(tf_idf, token_dim, seed))


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
  return l2_normalize_rows(_truncated_svd(scale @ adjacency @ scale, dim, seed))


def content_vectors(item_tokens: np.ndarray, num_tokens: int,
                    item_relations: Mapping[str, np.ndarray] | None = None,
                    external: np.ndarray | None = None, token_dim: int = 128,
                    relation_dim: int = 32, seed: int = 0) -> np.ndarray:
  """An item's whole content vector: tokens, relations and external vectors.

  Args:
    item_tokens: `[num_items, length]` token indices, 0 = padding.
    num_tokens: token vocabulary size, padding included.
    item_relations: relation name -> `[n, 2]` item-index pairs; a relation
      without pairs adds no block (it would be all zeros).
    external: `[num_items, dim]` aligned external vectors (see
      `data.item_vectors.load_item_vectors`).
    token_dim: width of the token block.
    relation_dim: width of each relation block.
    seed: SVD seed.

  Returns:
    `[num_items, width]` float32; row 0 (padding) is zero.
  """
  blocks = [token_vectors(item_tokens, num_tokens, token_dim, seed)]
  for name in sorted(item_relations or {}):
    if not len(item_relations[name]):
      continue
    blocks.append(relation_vectors(item_tokens.shape[0], item_relations[name],
                                   relation_dim, seed))
  if external is not None:
    blocks.append(l2_normalize_rows(external.astype(np.float32)))
  vectors = np.concatenate(blocks, axis=1)
  vectors[0] = 0.0
  return vectors
