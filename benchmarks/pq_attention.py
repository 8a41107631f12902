"""Exact vs product-quantised (PQ) top-K target attention, on CPU.

Trains a small TWIN-style `SeminarRetriever` on MovieLens-100K (one epoch,
ids only, so that it is quick), quantises its item attention keys once per
item (`quantize_item_keys`), and compares:

- quality on real data: test-target ranking under the 1 + 99 sampled
  protocol with exact vs PQ top-K selection (NDCG@10, HR@10, sampled AUC),
  and the overlap of the PQ top-K with the exact top-K on real histories;
- speed and memory on long histories (1k, 10k, 50k items, batch 256) drawn
  from the real catalogue: exact attention over every history item vs PQ
  lookup-table relevance over every item, top-K, exact attention over K.
  Both paths select the top-K and run the same `MultiHeadTargetAttention`
  layer over those K; they differ in the relevance over all L items: exact
  dot products with precomputed float keys vs PQ lookup tables on 16-byte
  codes.

  python benchmarks/pq_attention.py
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf  # pylint: disable=wrong-import-position

from benchmarks import sequential  # pylint: disable=wrong-import-position
from models import seminar  # pylint: disable=wrong-import-position
from models.layers import product_quantization  # pylint: disable=wrong-import-position
from offline_eval import datasets  # pylint: disable=wrong-import-position
from offline_eval import protocols  # pylint: disable=wrong-import-position
from offline_eval import reporting  # pylint: disable=wrong-import-position

RESULTS = (pathlib.Path(__file__).resolve().parent / "results" /
           "pq_attention.json")
log = sequential.log


def train_retriever(dataset, args) -> tuple[seminar.SeminarRetriever,
                                            sequential.SeminarData]:
  data = sequential.SeminarData(dataset, args.history_length, 1)
  config = seminar.SeminarConfig(top_k=args.top_k, use_queries=False,
                                 use_text=False, num_negatives=128,
                                 pq_subspaces=args.subspaces,
                                 pq_centroids=args.centroids)
  tf.keras.utils.set_random_seed(0)
  _, retriever = seminar.build_seminar(dataset.item_tokens,
                                       len(dataset.token_names), config)
  retriever.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  retriever.fit(sequential.length_bucketed_batches(
      data.windows, ["items", "keywords"], 64, 0),
                epochs=args.epochs, verbose=0)
  retriever.quantize_item_keys()
  return retriever, data


def real_data_quality(retriever, data, dataset) -> dict:
  """Sampled ranking of the test targets, exact vs PQ selection."""
  interacted = [dataset.interacted(u) for u in range(dataset.num_users)]
  negatives = protocols.sample_negatives(dataset.num_items, interacted, low=1)
  items = np.concatenate([dataset.test_items[:, None], negatives], axis=1)
  results = {}
  for mode in seminar.ScoringMode:
    score_items, _ = sequential.seminar_scorers(retriever, data,
                                                dataset.num_items, mode)
    scores = score_items("test", items)
    metrics = protocols.sampled_ranking(scores[:, 0], scores[:, 1:], (10,))
    metrics["sampled_auc"] = protocols.sampled_auc(scores[:, 0], scores[:, 1:])
    results[mode.value] = metrics
  history, _ = data.histories["test"]
  candidates = retriever.encoder.items(tf.constant(items))
  exact = retriever.attention.relevance(candidates,
                                        retriever.encoder.items(history))
  approximate = retriever.approximate_relevance(candidates, history)
  results["top_k_overlap"] = top_k_overlap(exact, approximate,
                                           tf.not_equal(history, 0)[:, None],
                                           retriever.config.top_k)
  return results


def top_k_overlap(exact, approximate, mask, k: int) -> float:
  """Mean share of the exact top-K that the approximate top-K also holds
  (rows with at most K allowed items are trivially 1 and are skipped)."""
  mask = tf.broadcast_to(mask, tf.shape(exact))
  allowed = tf.reduce_sum(tf.cast(mask, tf.int32), -1)
  exact_top, approximate_top = (
      tf.math.top_k(tf.where(mask, scores, -1e9), k).indices
      for scores in (exact, approximate))
  hits = tf.reduce_sum(tf.cast(tf.reduce_any(
      exact_top[..., :, None] == approximate_top[..., None, :], -1),
                               tf.float32), -1) / k
  return float(tf.reduce_mean(tf.boolean_mask(hits, allowed > k)))


def long_history_speed(retriever, num_items: int, length: int, batch: int,
                       chunk: int, repeats: int) -> dict:
  """Times exact and PQ attention of one target per user over `length`."""
  rng = np.random.default_rng(length)
  history = tf.constant(rng.integers(1, num_items, (batch, length)), tf.int64)
  targets = tf.constant(rng.integers(1, num_items, (batch, 1)), tf.int64)
  encoder, attention, k = (retriever.encoder, retriever.attention,
                           retriever.config.top_k)
  item_vectors = encoder.items(tf.range(num_items))

  # Exact keys are precomputed once per item too, so the exact path pays
  # only for reading L float keys, not for projecting them.
  item_keys = attention.keys(item_vectors)

  def attend_over(selected, history, target_vectors):
    vectors = tf.gather(item_vectors, tf.gather(history, selected,
                                                batch_dims=1))
    output = attention(target_vectors, vectors,
                       tf.ones(tf.shape(selected), tf.bool))
    return output, selected

  @tf.function
  def exact(history, targets):
    target_vectors = tf.gather(item_vectors, targets)
    relevance = tf.einsum("bd,bld->bl",
                          attention.selection_queries(target_vectors[:, 0]),
                          tf.gather(item_keys, history))
    return attend_over(tf.math.top_k(relevance, k).indices, history,
                       target_vectors)

  @tf.function
  def approximate(history, targets):
    target_vectors = tf.gather(item_vectors, targets)
    tables = product_quantization.lookup_tables(
        attention.selection_queries(target_vectors[:, 0]),
        retriever.key_codebooks)
    relevance = product_quantization.lookup_scores(
        tables, tf.gather(retriever.item_key_codes, history))
    return attend_over(tf.math.top_k(relevance, k).indices, history,
                       target_vectors)

  timings, tops = {}, {}
  for name, function in (("exact", exact), ("pq", approximate)):
    function(history[:chunk], targets[:chunk])  # trace
    best = float("inf")
    for _ in range(repeats):
      started = time.perf_counter()
      parts = [function(history[start:start + chunk],
                        targets[start:start + chunk])
               for start in range(0, batch, chunk)]
      best = min(best, time.perf_counter() - started)
    timings[name] = best
    tops[name] = tf.concat([indices for _, indices in parts], 0)
  overlap = tf.reduce_mean(tf.reduce_sum(tf.cast(tf.reduce_any(
      tops["exact"][:, :, None] == tops["pq"][:, None, :], -1), tf.float32),
                                         -1) / k)
  dim = item_vectors.shape[-1]
  return {
      "length": length, "exact_seconds": timings["exact"],
      "pq_seconds": timings["pq"],
      "speedup": timings["exact"] / timings["pq"],
      "top_k_overlap": float(overlap),
      # What each path reads per request: float vectors vs 1-byte codes.
      "exact_history_bytes": batch * length * dim * 4,
      "pq_history_bytes": batch * length * retriever.config.pq_subspaces,
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--lengths", nargs="+", type=int,
                      default=[1000, 10000, 50000])
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--chunk", type=int, default=16,
                      help="users per call, bounding the exact path's memory")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--history-length", type=int, default=50)
  parser.add_argument("--top-k", type=int, default=10)
  parser.add_argument("--subspaces", type=int, default=16)
  parser.add_argument("--centroids", type=int, default=256)
  parser.add_argument("--epochs", type=int, default=1)
  parser.add_argument("--output", default=str(RESULTS))
  args = parser.parse_args(argv)
  started = time.time()
  dataset = datasets.load_sequences("movielens-100k")
  log("training the TWIN-style retriever on MovieLens-100K")
  retriever, data = train_retriever(dataset, args)
  log("real-data quality, exact vs PQ selection")
  quality = real_data_quality(retriever, data, dataset)
  log(f"quality: {quality}")
  speed = []
  for length in args.lengths:
    speed.append(long_history_speed(retriever, dataset.num_items, length,
                                    args.batch, args.chunk, args.repeats))
    log(f"length {length}: {speed[-1]}")
  table = reporting.markdown_table(
      ["history", "exact s / batch", "PQ s / batch", "speedup",
       "top-K overlap", "exact history MiB", "PQ codes MiB"],
      [[row["length"], f"{row['exact_seconds']:.3f}",
        f"{row['pq_seconds']:.3f}", f"{row['speedup']:.1f}x",
        f"{row['top_k_overlap']:.3f}",
        f"{row['exact_history_bytes'] / 2**20:.1f}",
        f"{row['pq_history_bytes'] / 2**20:.1f}"] for row in speed])
  quality_table = reporting.markdown_table(
      ["selection", "NDCG@10", "HR@10", "MRR", "sampled AUC"],
      [[mode] + [f"{quality[mode][name]:.4f}"
                 for name in ("ndcg@10", "hr@10", "mrr", "sampled_auc")]
       for mode in ("exact", "pq")])
  print(table)
  print(quality_table)
  print(f"real-history top-{args.top_k} overlap: "
        f"{quality['top_k_overlap']:.3f}; NDCG@10 difference "
        f"{quality['pq']['ndcg@10'] - quality['exact']['ndcg@10']:+.4f}")
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  reporting.write_json(args.output, {
      "args": vars(args), "speed": speed, "quality": quality,
      "peak_rss_mib": peak_mib, "seconds": time.time() - started,
      "table": table, "quality_table": quality_table})
  log(f"peak RSS {peak_mib:.0f} MiB; wrote {args.output}")


if __name__ == "__main__":
  main()
