"""Search queries derived from item text, for data without search logs.

SEMINAR's public code does the same for Amazon data: an interaction's query
is a few keywords drawn at random from its item's text/attribute tokens.
Pure numpy; the token indices are the Transform's (0 = padding).
"""

from __future__ import annotations

import numpy as np


def derive_queries(items: np.ndarray, item_tokens: np.ndarray,
                   num_keywords: int, seed: int = 0) -> np.ndarray:
  """Derives a query per interaction from its item's tokens.

  Args:
    items: `[...]` item indices of interactions (0 = padding).
    item_tokens: `[num_items, T]` text/attribute token indices, 0 = pad.
    num_keywords: keywords per query: a random subset of the item's tokens.
    seed: seeds the choice.

  Returns:
    `[..., num_keywords]` keyword (token) indices, 0-padded.
  """
  rng = np.random.default_rng(seed)
  items = np.asarray(items)
  tokens = item_tokens[items.reshape(-1)]
  tokens = np.pad(tokens, [(0, 0), (0, max(0, num_keywords - tokens.shape[1]))])
  # Random keys on real tokens, +inf on padding: the smallest keys pick a
  # uniform subset of the real tokens.
  keys = np.where(tokens > 0, rng.random(tokens.shape), np.inf)
  chosen = np.argsort(keys, axis=1)[:, :num_keywords]
  queries = np.take_along_axis(tokens, chosen, axis=1)
  return queries.reshape(items.shape + (num_keywords,))


def item_keywords(item_tokens: np.ndarray, num_keywords: int, width: int,
                  seed: int) -> np.ndarray:
  """Every item's derived query: `num_keywords` of its tokens, one per item.

  Args:
    item_tokens: `[num_items, T]` token indices, 0 = padding.
    num_keywords: keywords per query.
    width: columns of the result (>= num_keywords), 0-padded.
    seed: seeds the choice; equal seeds give equal queries.

  Returns:
    `[num_items, width]` int64.
  """
  keywords = derive_queries(np.arange(len(item_tokens)), item_tokens,
                            num_keywords, seed)
  return np.pad(keywords, [(0, 0), (0, width - num_keywords)])
