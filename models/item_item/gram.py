"""The co-occurrence matrix G = XᵀX of the item-item baselines, sized first.

EASE^R and item-kNN both start from G, whose non-zeros are the item pairs
that some user has both of. They grow with the sum over users of their item
count squared, not with the catalogue: at 10M events over 250k users of
log-normal activity, EASE^R's G passed 19 GiB before the fit's own memory
check, which reads G's size, could run (benchmarks/README.md, "10M
interactions x 1M items"). `checked_gram` sizes G first: from that sum when
it already fits the budget, else by counting G's non-zeros a block of
columns at a time, holding one block's product, and it refuses before
building a G that does not fit.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
from scipy import sparse

# Share of the memory available when a fit starts that it may use by
# default: the rest is left to the process's other data and to neighbours.
DEFAULT_MEMORY_SHARE = 0.5
# Bytes per co-occurring pair at item-kNN's peak: G as float64 CSR (12), its
# COO copy (16) and the similarities' CSR (12), with the ranking's keys.
ITEM_KNN_BYTES_PER_NONZERO = 64
# Columns of G whose non-zeros are counted at once.
_COLUMNS_PER_BLOCK = 4096


def available_memory_bytes() -> int:
  """Memory the kernel can give now without swapping (`MemAvailable`).

  Falls back to the free physical pages where `/proc/meminfo` is missing.
  """
  try:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
      for line in meminfo:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget_bytes(memory_budget_gb: Optional[float]) -> int:
  """`memory_budget_gb` in bytes, or by default `DEFAULT_MEMORY_SHARE` of
  the memory available now."""
  if memory_budget_gb is not None:
    return int(memory_budget_gb * 1e9)
  return int(DEFAULT_MEMORY_SHARE * available_memory_bytes())


def nonzeros_bound(interactions: sparse.csr_matrix) -> int:
  """At least G's non-zeros: the sum of each user's item count squared,
  and at most the items squared."""
  per_user = np.diff(interactions.indptr).astype(np.int64)
  return int(min(np.sum(per_user * per_user),
                 interactions.shape[1] ** 2))


def nonzeros_per_item(interactions: sparse.csr_matrix,
                      columns_per_block: int = _COLUMNS_PER_BLOCK
                      ) -> np.ndarray:
  """Each item's non-zeros in G (its diagonal included), counted a block of
  columns at a time without holding G."""
  items_by_user = interactions.T.tocsr()
  users_by_item = interactions.tocsc()
  return np.concatenate([
      (items_by_user @ users_by_item[:, start:start + columns_per_block]
       ).getnnz(axis=0)
      for start in range(0, interactions.shape[1], columns_per_block)]
                        ).astype(np.int64)


def count_nonzeros(interactions: sparse.csr_matrix,
                   columns_per_block: int = _COLUMNS_PER_BLOCK) -> int:
  """G's non-zeros, counted without holding G (`nonzeros_per_item`)."""
  return int(nonzeros_per_item(interactions, columns_per_block).sum())


def build(interactions: sparse.csr_matrix) -> sparse.csr_matrix:
  """G = XᵀX, CSR, in X's dtype."""
  return (interactions.T @ interactions).tocsr()


def checked_gram(interactions: sparse.csr_matrix, budget_bytes: int,
                 bytes_per_nonzero: int, family: str) -> sparse.csr_matrix:
  """G of binary X, once its size is known to fit `budget_bytes`.

  Args:
    interactions: binary `[users, items]` X, CSR.
    budget_bytes: the memory the fit may use.
    bytes_per_nonzero: what the fit holds per non-zero of G at its peak.
    family: the baseline, for the error.

  Returns:
    G = XᵀX, CSR, in X's dtype.

  Raises:
    ValueError: naming `memory_budget_gb`, if G's non-zeros at
      `bytes_per_nonzero` pass the budget.
  """
  if bytes_per_nonzero * nonzeros_bound(interactions) > budget_bytes:
    nonzeros = count_nonzeros(interactions)
    if bytes_per_nonzero * nonzeros > budget_bytes:
      raise ValueError(
          f"{family}'s co-occurrence matrix XᵀX over "
          f"{interactions.shape[1]:,} items and {interactions.nnz:,} events "
          f"has {nonzeros:,} non-zeros, about "
          f"{bytes_per_nonzero * nonzeros / 1e9:.1f} GB at its fit's peak, "
          f"above memory_budget_gb={budget_bytes / 1e9:.1f}: raise "
          "memory_budget_gb on a machine with that memory, or train the "
          "baseline on fewer events")
  return build(interactions)
