"""The co-occurrence matrix G = XᵀX of the item-item baselines, by blocks.

EASE^R and item-kNN both start from G, whose non-zeros are the item pairs
that some user has both of. They grow with the sum over users of their item
count squared, not with the catalogue: at 10M events over 250k users of
log-normal activity, G has 616M non-zeros, and building it in one product
(scipy's CSR of float32 data, int32 indices, and the copy made from it)
passed 19 GiB (benchmarks/HISTORY.md, the 10M x 1M runs before run 7).

So G is only ever computed a block of rows at a time (`row_blocks`), each
block bounded by an upper bound on its non-zeros, computed from X alone
(`nonzeros_bound_per_item`):
* `nonzeros_per_item` counts G's non-zeros per row without holding G, so a
  fit checks its memory before building anything;
* `build` assembles G in arrays sized from that count, about 8 bytes per
  non-zero (float32 count, int32 column) and one block more;
* item-kNN keeps each block's top neighbours and never holds G whole.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional

import numpy as np
from scipy import sparse

from models.item_item import neighbours as item_neighbours

# Share of the memory available when a fit starts that it may use by
# default: the rest is left to the process's other data and to neighbours.
DEFAULT_MEMORY_SHARE = 0.5
# An upper bound on the non-zeros of G's rows computed at once: a block's
# product and what a fit derives from it stay a few hundred MB.
ENTRIES_PER_BLOCK = 1 << 23


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


def nonzeros_bound_per_item(interactions: sparse.csr_matrix) -> np.ndarray:
  """At least each item's non-zeros in G: the item counts of its users,
  summed, and at most the items."""
  per_user = np.diff(interactions.indptr).astype(np.float64)
  bound = interactions.T.tocsr() @ per_user
  return np.minimum(np.rint(bound).astype(np.int64), interactions.shape[1])


def block_entries(interactions: sparse.csr_matrix,
                  entries_per_block: Optional[int] = None) -> int:
  """The most non-zeros a block of `row_blocks` can hold: the block bound,
  or one whole row where a row's own bound passes it, or all of G's bound
  where that is less."""
  entries_per_block = entries_per_block or ENTRIES_PER_BLOCK
  bounds = nonzeros_bound_per_item(interactions)
  return int(min(max(entries_per_block, bounds.max(initial=0)), bounds.sum()))


def row_blocks(interactions: sparse.csr_matrix,
               entries_per_block: Optional[int] = None
               ) -> Iterator[tuple[int, sparse.csr_matrix]]:
  """G's rows a block at a time, never G whole.

  A block's non-zeros are at most `entries_per_block`
  (`nonzeros_bound_per_item`), or it is one row.

  Args:
    interactions: binary `[users, items]` X, CSR.
    entries_per_block: the bound of a block's non-zeros;
      `ENTRIES_PER_BLOCK` by default.

  Yields:
    `(first row, G[first row:first row + n])`, CSR `[n, items]` in X's
    dtype with sorted indices, covering every row in order.
  """
  entries_per_block = entries_per_block or ENTRIES_PER_BLOCK
  items_by_user = interactions.T.tocsr()
  bounds = np.zeros(interactions.shape[1] + 1, np.int64)
  np.cumsum(nonzeros_bound_per_item(interactions), out=bounds[1:])
  for start, end in item_neighbours.row_blocks(bounds, entries_per_block):
    block = (items_by_user[start:end] @ interactions).tocsr()
    block.sort_indices()
    yield start, block


def nonzeros_per_item(interactions: sparse.csr_matrix,
                      entries_per_block: Optional[int] = None
                      ) -> np.ndarray:
  """Each item's non-zeros in G (its diagonal included), counted a block of
  rows at a time (`row_blocks`)."""
  counts = [block.getnnz(axis=1)
            for _, block in row_blocks(interactions, entries_per_block)]
  return (np.concatenate(counts) if counts
          else np.zeros(0)).astype(np.int64)


def index_bytes(nonzeros: int) -> int:
  """Bytes of one index of a sparse matrix with `nonzeros` entries: scipy
  keeps int32 indices below 2³¹ entries."""
  return 4 if nonzeros < 2**31 else 8


def build(interactions: sparse.csr_matrix,
          nonzeros_per_row: Optional[np.ndarray] = None,
          entries_per_block: Optional[int] = None) -> sparse.csr_matrix:
  """G = XᵀX, CSR with sorted indices, in X's dtype.

  Built a block of rows at a time (`row_blocks`) into arrays sized from
  `nonzeros_per_row`: G's values and indices (`index_bytes`) once, plus one
  block, never the product's copy.

  Args:
    interactions: binary `[users, items]` X, CSR.
    nonzeros_per_row: `nonzeros_per_item(interactions)`, if already
      counted; None counts them first.
    entries_per_block: the bound of a block's non-zeros
      (`row_blocks`).

  Returns:
    G.
  """
  if nonzeros_per_row is None:
    nonzeros_per_row = nonzeros_per_item(interactions, entries_per_block)
  num_items = interactions.shape[1]
  nonzeros = int(nonzeros_per_row.sum())
  index_dtype = np.int32 if index_bytes(nonzeros) == 4 else np.int64
  indptr = np.zeros(num_items + 1, index_dtype)
  np.cumsum(nonzeros_per_row, out=indptr[1:])
  indices = np.empty(nonzeros, index_dtype)
  data = np.empty(nonzeros, interactions.dtype)
  for start, block in row_blocks(interactions, entries_per_block):
    first, last = indptr[start], indptr[start + block.shape[0]]
    indices[first:last] = block.indices
    data[first:last] = block.data
  return sparse.csr_matrix((data, indices, indptr),
                           shape=(num_items, num_items), copy=False)
