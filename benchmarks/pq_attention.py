"""Exact vs product-quantised (PQ) top-K target attention, on CPU.

Trains a small TWIN-style `SeminarRetriever` on MovieLens-100K (`--epochs`,
ids only, so that it is quick), quantises its item attention keys once per
item (`quantize_item_keys`), and compares:

- quality on real data: test-target ranking under the 1 + 99 sampled
  protocol with exact selection vs PQ selection at each rerank factor
  (NDCG@10, HR@10, sampled AUC), and the top-K overlap with exact
  selection on every user's whole real history; and, since a shortlist of
  `factor * K` that covers the whole history selects exactly by
  construction, the same on test histories of `--score-history-lengths`
  (default 50 and 200 most recent items) for the users whose history is
  longer than the shortlist (`shortlist_below_history`);
- speed and memory on long histories (1k, 10k, 50k items, batch 256), one
  target per user, drawn (a) with replacement from the 1,447 real items, so
  that a 10k history repeats each item ~7 times and the K exact winners are
  often copies of one or two items, and (b) without replacement from a
  synthetic catalogue (`synthetic_catalogue`), so that every history item
  differs, as in a lifelong history. Every path gathers what it
  needs per history item from a per-item table, as a server holding the
  history as item ids would:
  - exact: gathers each history item's precomputed float key (256 bytes),
    dot product with the target's query, top-K;
  - PQ: gathers each history item's codes (16 bytes), scores them with the
    target's lookup table, keeps a shortlist of `rerank_factor * K`, gathers
    the shortlist's float keys for exact relevance, top-K of those;
  then both attend over the K selected items only. Selection and attention
  are the functions `SeminarRetriever.score_selected`, the exported
  scorer, calls (`target_attention.top_k_positions` / `rerank_positions`,
  `MultiHeadTargetAttention.attend_selected`); the export embeds history
  items with its encoder where this gathers precomputed keys, which makes
  exact here the faster baseline. Exact is timed as a plain TF graph and
  XLA-compiled (`jit_compile=True`), PQ XLA-compiled at every rerank factor
  and, at `--rerank-factor`, also as the SEMINAR export runs it: a plain
  graph (`attention_scoring=pq`) and a graph whose lookups alone are
  XLA-compiled (`pq_xla`). Each is timed at several users-per-call chunks;
  each path's fastest setting is the one compared;
- the retriever's own scorers on the MovieLens-drawn histories, in every
  scoring mode (`export_scorer_speed`): `score_selected`, which the export
  runs and which embeds only what the selection needs, against the masked
  `score` of training, which embeds and attends over the whole history.

Top-K overlap is tie-aware: the share of the K selected positions whose
exact relevance is at least the K-th largest exact relevance of the row.
Positions holding the same item have equal relevance, so any of its copies
counts; without ties this is |selected ∩ exact top-K| / K.

  python -m benchmarks.pq_attention
  python -m benchmarks.pq_attention --lengths --catalogue 0   # quality only
  python -m benchmarks.pq_attention --dataset contract --dataset-dir DIR

`--dataset` picks the data the retriever trains on and the real histories
come from (default MovieLens-100K, which the recorded results used).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import pq_attention_report
from benchmarks import pq_scorer_speed
from benchmarks import pq_selection_quality
from benchmarks import seminar_data
from models.layers import product_quantization
from models.layers import target_attention
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu
from models import training
from offline_eval import datasets

# How a timed path is compiled: a plain TF graph, the graph with the PQ
# lookups XLA-compiled (`product_quantization.xla_lookup_scores`), or the
# whole request XLA-compiled.
GRAPH, XLA_LOOKUPS, XLA = "graph", "graph + XLA lookups", "XLA"
PATH_SUFFIX = {GRAPH: "_graph", XLA_LOOKUPS: "_xla_lookups", XLA: ""}
RESULTS = common.RESULTS_DIR / "pq_attention.json"


def train_retriever(dataset, args) -> tuple[seminar.SeminarRetriever,
                                            seminar_data.SeminarData]:
  data = seminar_data.SeminarData(dataset, args.history_length, 1)
  config = seminar.SeminarConfig(top_k=args.top_k, use_queries=False,
                                 use_text=False, num_negatives=128,
                                 pq_subspaces=args.subspaces,
                                 pq_centroids=args.centroids)
  tf.keras.utils.set_random_seed(0)
  _, retriever = seminar_psu.build_seminar(dataset.item_tokens,
                                           len(dataset.token_names), config)
  training.fit(retriever, training.length_bucketed_batches(
      data.windows, seminar_data.WINDOW_SEQUENCES, 64, 0),
               config.learning_rate, args.epochs)
  retriever.quantize_item_keys()
  return retriever, data


class RequestPaths:
  """The exact and PQ serving paths of one target per user.

  Args:
    attention: the retriever's `MultiHeadTargetAttention`.
    item_vectors: `[N, D]` item vectors (row 0 is padding).
    codebooks: `[M, C, dim / M]` PQ codebooks of the item keys.
    item_codes: `[N, M]` uint8 codes of every item's key.
    k: items each target attends to.
  """

  def __init__(self, attention, item_vectors: tf.Tensor,
               codebooks: tf.Tensor, item_codes: tf.Tensor, k: int):
    self.attention = attention
    self.k = k
    self.item_vectors = item_vectors
    # Keys are precomputed once per item, like the codes, so that neither
    # path pays for projecting history items.
    self.item_keys = attention.keys(item_vectors)
    self.codebooks = codebooks
    self.item_codes = item_codes
    self._functions = {}

  @classmethod
  def from_retriever(cls, retriever: seminar.SeminarRetriever
                     ) -> "RequestPaths":
    """Paths over the catalogue of a retriever after
    `quantize_item_keys()`."""
    return cls(retriever.attention, retriever.encoder.items(
        tf.range(retriever.encoder.id_embedding.input_dim)),
               retriever.key_codebooks, retriever.item_key_codes,
               retriever.config.top_k)

  def exact_relevance(self, queries: tf.Tensor, history: tf.Tensor
                      ) -> tf.Tensor:
    """`[B, 1, D]` queries, `[B, 1, S]` item ids -> `[B, 1, S]` exact
    relevance."""
    return tf.einsum("bnd,bnsd->bns", queries,
                     tf.gather(self.item_keys, history))

  def select(self, history: tf.Tensor, queries: tf.Tensor,
             factor: int | None, xla_lookups: bool = False
             ) -> tuple[tf.Tensor, tf.Tensor]:
    """`[B, 1, K]` positions and whether each is a real item, selected by
    the functions `SeminarRetriever.score_selected` calls: exact when
    `factor` is None, else PQ with a shortlist of `factor * K`, its lookups
    XLA-compiled if `xla_lookups`."""
    allowed = tf.not_equal(history, 0)[:, tf.newaxis]
    if factor is None:
      return target_attention.top_k_positions(
          self.exact_relevance(queries, history[:, tf.newaxis]), allowed,
          self.k)
    tables = product_quantization.lookup_tables(queries[:, 0],
                                                self.codebooks)
    lookup_scores = (product_quantization.xla_lookup_scores if xla_lookups
                     else product_quantization.lookup_scores)
    approximate = lookup_scores(tables, tf.gather(self.item_codes, history))
    return target_attention.rerank_positions(
        approximate[:, tf.newaxis], allowed,
        lambda shortlist: self.exact_relevance(
            queries, tf.gather(history, shortlist, batch_dims=1)),
        self.k, factor)

  def function(self, factor: int | None, compiled: str):
    """`(history [B, L], targets [B]) -> (attended, positions [B, K])`,
    compiled as `compiled` says (`GRAPH`, `XLA_LOOKUPS` or `XLA`)."""
    if (factor, compiled) not in self._functions:

      def request(history, targets):
        target_vectors = tf.gather(self.item_vectors, targets)[:, None]
        positions, allowed = self.select(
            history, self.attention.selection_queries(target_vectors),
            factor, xla_lookups=compiled == XLA_LOOKUPS)
        selected = tf.gather(self.item_vectors,
                             tf.gather(history, positions, batch_dims=1))
        return (self.attention.attend_selected(target_vectors, selected,
                                               allowed), positions[:, 0])

      self._functions[factor, compiled] = tf.function(
          request, jit_compile=compiled == XLA)
    return self._functions[factor, compiled]


def synthetic_catalogue(paths: RequestPaths, size: int, seed: int = 0
                        ) -> RequestPaths:
  """Paths over `size` synthetic items, enough for long histories of
  distinct items.

  MovieLens-100K has 1,447 items, so a 10k history drawn from it repeats
  every item ~7 times. Here item vectors are drawn from a Gaussian with the
  mean and covariance of the real item vectors; keys come from the trained
  attention layer and codebooks are trained on (a sample of) the synthetic
  keys, as `quantize_item_keys` does for the real catalogue.
  """
  real = paths.item_vectors.numpy()[1:].astype(np.float64)
  rng = np.random.default_rng(seed)
  vectors = rng.multivariate_normal(real.mean(0), np.cov(real, rowvar=False),
                                    size).astype(np.float32)
  # Row 0 stays the padding item.
  vectors = tf.constant(np.concatenate([np.zeros_like(vectors[:1]),
                                        vectors]))
  keys = paths.attention.keys(vectors)
  subspaces, centroids = paths.codebooks.shape[:2]
  # A sample trains the codebooks in seconds; encoding covers every item.
  sample = rng.choice(size, min(size, 20 * centroids), replace=False) + 1
  codebooks = tf.constant(product_quantization.train_codebooks(
      tf.gather(keys, sample).numpy(), subspaces, centroids, seed=seed))
  # In blocks: encoding materialises `[n, M, C]` distances.
  codes = tf.concat([tf.cast(product_quantization.encode(
      keys[start:start + 8192], codebooks), tf.uint8)
                     for start in range(0, size + 1, 8192)], 0)
  return RequestPaths(paths.attention, vectors, codebooks, codes, paths.k)


def _timed_settings(dim: int, subspaces: int, length: int, args
                    ) -> list[dict]:
  """One run to time per path, compilation and chunk whose largest
  unfused intermediate stays under `args.max_chunk_mib`."""
  settings = [("exact", None, compiled) for compiled in (GRAPH, XLA)]
  settings += [(f"pq_r{factor}", factor, XLA)
               for factor in args.rerank_factors]
  # What the SEMINAR export runs: `attention_scoring=pq` is the plain
  # graph, `pq_xla` the graph with XLA lookups.
  settings += [(f"pq_r{args.rerank_factor}", args.rerank_factor, compiled)
               for compiled in (GRAPH, XLA_LOOKUPS)]
  runs = []
  for name, factor, compiled in settings:
    # Bytes per history item of the largest tensor the path materialises
    # when ops are not fused: gathered float keys vs gathered lookups.
    per_item = 4 * (dim if factor is None else subspaces)
    for chunk in args.chunks:
      if chunk * length * per_item <= args.max_chunk_mib * 2**20:
        runs.append({"path": name, "factor": factor, "compiled": compiled,
                     "chunk": chunk, "seconds": float("inf")})
  return runs


def long_history_speed(paths: RequestPaths, length: int, args,
                       distinct: bool = False) -> dict:
  """Times every path at every chunk whose largest per-item intermediate
  stays under `args.max_chunk_mib`; keeps each setting's best repeat.

  Histories are drawn from the paths' catalogue with replacement, or
  without (`distinct`: every history item differs).
  """
  rng = np.random.default_rng(length)
  num_items = paths.item_vectors.shape[0]
  if distinct:
    history = np.stack([rng.choice(num_items - 1, length, replace=False) + 1
                        for _ in range(args.batch)])
  else:
    history = rng.integers(1, num_items, (args.batch, length))
  history = tf.constant(history, tf.int32)
  targets = tf.constant(rng.integers(1, num_items, args.batch), tf.int32)
  dim = paths.item_keys.shape[-1]
  subspaces = paths.codebooks.shape[0]
  runs = _timed_settings(dim, subspaces, length, args)
  for run in runs:  # trace and compile
    paths.function(run["factor"], run["compiled"])(history[:run["chunk"]],
                                                   targets[:run["chunk"]])
  load_before = os.getloadavg()[0]
  # Rounds interleave the settings, so that load from other processes on a
  # shared machine hits all of them alike; the best round counts.
  for _ in range(args.repeats):
    for run in runs:
      function = paths.function(run["factor"], run["compiled"])
      chunk = run["chunk"]
      started = time.perf_counter()
      positions = [function(history[start:start + chunk],
                            targets[start:start + chunk])[1]
                   for start in range(0, args.batch, chunk)]
      run["seconds"] = min(run["seconds"], time.perf_counter() - started)
      run["positions"] = tf.concat(positions, 0)
  # Exact relevance from one matrix product per target, gathered per
  # position: copies of an item get bitwise equal scores, so ties are ties.
  queries = paths.attention.selection_queries(
      tf.gather(paths.item_vectors, targets))
  exact = tf.gather(tf.matmul(queries, paths.item_keys, transpose_b=True),
                    history, batch_dims=1)
  best = {}
  for run in runs:
    run["top_k_overlap"] = float(tf.reduce_mean(
        pq_selection_quality.tie_aware_overlap(exact, run.pop("positions"),
                                               paths.k)))
    key = (run["path"], run["compiled"])
    if key not in best or run["seconds"] < best[key]["seconds"]:
      best[key] = run
  exact_best = min((run for (path, _), run in best.items() if path == "exact"),
                   key=lambda run: run["seconds"])
  k = paths.k
  return {
      "length": length, "runs": runs,
      "load_average": [load_before, os.getloadavg()[0]],
      "exact": exact_best,
      "pq": {path + PATH_SUFFIX[compiled]: {
          **run, "speedup": exact_best["seconds"] / run["seconds"],
          # What the path reads per batch: codes of every history item plus
          # the shortlist's float keys.
          "history_bytes": args.batch * (length * subspaces +
                                         min(run["factor"] * k, length) *
                                         dim * 4 * (run["factor"] > 1))}
             for (path, compiled), run in best.items() if path != "exact"},
      "exact_history_bytes": args.batch * length * dim * 4,
  }


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_dataset_arguments(parser, datasets.DATASETS, "movielens-100k")
  parser.add_argument("--lengths", nargs="*", type=int,
                      default=[1000, 10000, 50000],
                      help="long-history lengths timed; none skips the "
                      "speed runs (quality only)")
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--chunks", nargs="+", type=int,
                      default=[4, 16, 64, 256],
                      help="users per call, each timed")
  parser.add_argument("--max-chunk-mib", type=int, default=512,
                      help="skip chunks whose unfused intermediate is larger")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--history-length", type=int, default=50)
  parser.add_argument("--top-k", type=int, default=10)
  parser.add_argument("--subspaces", type=int, default=16)
  parser.add_argument("--centroids", type=int, default=256)
  parser.add_argument("--rerank-factors", nargs="+", type=int,
                      default=[1, 2, 4, 8, 16])
  parser.add_argument("--score-history-lengths", nargs="*", type=int,
                      default=[50, 200],
                      help="test histories (most recent items) on which "
                      "exact and PQ selection rank the targets; PQ can only "
                      "differ for users whose history exceeds the shortlist")
  parser.add_argument("--rerank-factor", type=int,
                      default=seminar.SeminarConfig.pq_rerank_factor,
                      help="the factor of the headline row and of the "
                      "export-path PQ timings")
  parser.add_argument("--catalogue", type=int, default=100000,
                      help="synthetic items for the distinct-item histories; "
                      "0 skips them")
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--output", default=str(RESULTS))
  return parser


def main(argv=None) -> None:
  args = _parser().parse_args(argv)
  started = time.time()
  dataset = common.load_sequences(args.dataset, args)
  common.log("training the TWIN-style retriever on "
             f"{common.dataset_label(args.dataset, args)}")
  retriever, data = train_retriever(dataset, args)
  common.log("real-data quality, exact vs PQ selection")
  quality = pq_selection_quality.real_data_quality(
      retriever, data, dataset, args.rerank_factors,
      args.score_history_lengths)
  common.log(f"quality: {quality}")
  paths = RequestPaths.from_retriever(retriever)
  runs = [(paths, length, False) for length in args.lengths]
  if args.catalogue:
    common.log(f"synthetic catalogue of {args.catalogue} items")
    synthetic = synthetic_catalogue(paths, args.catalogue)
    runs += [(synthetic, length, True) for length in args.lengths
             if length <= args.catalogue]
  speed = []
  for run_paths, length, distinct in runs:
    speed.append({"histories": "distinct" if distinct else "movielens",
                  **long_history_speed(run_paths, length, args, distinct)})
    common.log(f"length {length} ({speed[-1]['histories']}): "
        f"exact {speed[-1]['exact']['seconds']:.3f} s; " +
        ", ".join(f"{name} {run['seconds']:.3f} s "
                  f"({run['speedup']:.1f}x, overlap "
                  f"{run['top_k_overlap']:.3f})"
                  for name, run in speed[-1]["pq"].items()))

  retriever.attention.rerank_factor = args.rerank_factor
  scorer_speed = []
  for length in args.lengths:
    scorer_speed += pq_scorer_speed.export_scorer_speed(retriever, length, args)
    common.log(f"scorers at length {length}: " + ", ".join(
        f"{row['scorer']} {row['mode']} {row['seconds']:.3f} s"
        for row in scorer_speed if row["length"] == length))

  table = pq_attention_report.speed_table(speed)
  modes = ["exact"] + [f"pq_r{factor}" for factor in args.rerank_factors]
  quality_table = pq_attention_report.quality_table(
      quality, modes, args.rerank_factors, args.top_k)
  shortlist_table = pq_attention_report.shortlist_table(quality, modes)
  scorer_table = pq_attention_report.scorer_table(scorer_speed)
  print(table)
  print(f"the retriever's scorers, r={args.rerank_factor}:")
  print(scorer_table)
  print(quality_table)
  print("where the shortlist is shorter than the history:")
  print(shortlist_table)
  headline = f"pq_r{args.rerank_factor}"
  print(f"{headline}: NDCG@10 difference "
        f"{quality[headline]['ndcg@10'] - quality['exact']['ndcg@10']:+.4f}, "
        f"sampled AUC difference "
        f"{quality[headline]['sampled_auc'] - quality['exact']['sampled_auc']:+.4f}")
  peak_mib = common.peak_rss_mib()
  common.write_results(args.output, {
      "command": common.command("benchmarks.pq_attention", argv),
      "machine": common.machine(), "args": vars(args), "speed": speed, "quality": quality,
      "export_scorer_speed": scorer_speed,
      "tables_bytes": {
          name: {"item_keys": int(tf.size(catalogue.item_keys)) * 4,
                 "item_codes": int(tf.size(catalogue.item_codes)),
                 "codebooks": int(tf.size(catalogue.codebooks)) * 4}
          for name, catalogue in [("movielens", paths)] + (
              [("distinct", synthetic)] if args.catalogue else [])},
      "peak_rss_mib": peak_mib, "seconds": time.time() - started,
      "table": table, "scorer_table": scorer_table,
      "quality_table": quality_table, "shortlist_table": shortlist_table})
  common.log(f"peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
  main()
