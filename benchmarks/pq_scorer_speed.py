"""How fast the SEMINAR retriever's exported scorers run, exact and PQ.

Times the retriever's scoring functions on long MovieLens-drawn histories,
the selection exact or by product quantization. Used by
`benchmarks.pq_attention`.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import tensorflow as tf

from models.seminar import model as seminar


# The retriever's scoring functions: what the exported scorer runs, and the
# masked form it ran before (every candidate attends over the whole
# history, the unselected items masked out).
SCORERS = ("score_selected", "score")


def export_scorer_speed(retriever: seminar.SeminarRetriever, length: int,
                        args) -> list[dict]:
  """Times the retriever's `SCORERS` in every `ScoringMode` on
  MovieLens-drawn histories, one candidate per user; each setting's best
  chunk and round counts, against `score_selected` with exact selection.

  Unlike `RequestPaths`, exact selection embeds and projects every history
  item here; `score_selected` with PQ embeds only its shortlist.
  """
  rng = np.random.default_rng(length)
  num_items = retriever.encoder.id_embedding.input_dim
  history = tf.constant(rng.integers(1, num_items, (args.batch, length)))
  keywords = tf.zeros([args.batch, length, 1], tf.int64)
  candidates = tf.constant(rng.integers(1, num_items, (args.batch, 1)))
  dim = retriever.config.embedding_dim
  chunks = [chunk for chunk in args.chunks
            if chunk * length * dim * 4 <= args.max_chunk_mib * 2**20]
  scorers = {(name, mode): tf.function(functools.partial(
      getattr(retriever, name), mode=mode))
             for name in SCORERS for mode in seminar.ScoringMode}
  for score in scorers.values():  # trace and compile
    for chunk in chunks:
      score(history[:chunk], keywords[:chunk], candidates[:chunk])
  seconds = {(scorer, chunk): float("inf") for scorer in scorers
             for chunk in chunks}
  for _ in range(args.repeats):
    for scorer, chunk in seconds:
      started = time.perf_counter()
      for start in range(0, args.batch, chunk):
        scorers[scorer](history[start:start + chunk],
                        keywords[start:start + chunk],
                        candidates[start:start + chunk]).numpy()
      seconds[scorer, chunk] = min(seconds[scorer, chunk],
                                   time.perf_counter() - started)
  best = {scorer: min((seconds[scorer, chunk], chunk) for chunk in chunks)
          for scorer in scorers}
  baseline = best[SCORERS[0], seminar.ScoringMode.EXACT][0]
  return [{"scorer": name, "mode": mode.value, "length": length,
           "rerank_factor": retriever.attention.rerank_factor,
           "seconds": value, "chunk": chunk, "speedup": baseline / value}
          for (name, mode), (value, chunk) in best.items()]
