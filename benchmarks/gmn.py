"""GMN ablation: video retrieval on Amazon's two-domain dual graph.

Data: `amazon-video-games` (CDRIB's two Amazon domains, 2,179 users in both),
imported by `data.importers`; `--video_domain` says which folder
is the video side (the other is the item side). The data has no timestamps,
so `dual_graph.split_shared_user_videos` holds out a seeded share of each
shared user's videos (`--split_seed`, fixed across model seeds); all other
interactions train. Every model trains on all users' train videos (users of
the video domain only have an empty item side), with in-batch softmax and the
logQ correction, and is scored by `offline_eval`:

- full ranking over every video, train videos excluded: Recall@20/50,
  NDCG@20;
- AUC of each held-out video against 99 videos the user never touched
  (`sample_negatives` + `sampled_auc`, the paper's offline metric).

Variants (one `GmnConfig` each, same embeddings, pooling, towers, training):
(a) videos-only two-tower, (b) both sides pooled and concatenated without
matching, (c) node-level matching only, (d) preference-level matching only,
(e) full GMN. MostPop, scored by the same protocol, is a reference row.
Mean ± std over `--seeds` model seeds; ratios are against (a) from this run.

Closed-form baselines (`--classical`), the product's EASE^R and item-kNN
fits (`offline_eval.item_item`), scored by the same protocol over the same
video candidates. `ease` and `item_knn` fit the user-video train edges, what
(a) and MostPop read; `*_both_sides` also fit every user-item edge, what
(b)-(e) read; either way a user is scored by their whole train row (not the
32-neighbour lists) and only videos are ranked. Their hyperparameters are
picked by the benchmark's recall@20 on validation videos carved from train
the way test videos were carved from the log (`split_shared_user_videos`,
same fraction and seed, on the train log); the chosen setting is refitted on
every train edge. They are deterministic, so one run stands for all seeds.
`ease_both_sides` inverts a dense (videos + items)² matrix per λ (14.5k²
here; estimated at about six minutes per λ on the shared 2-core machine,
from the 16 GFLOP/s a 4k inversion reached), so it is not run by default.

    python -m benchmarks.gmn --video_domain game_video
    python -m benchmarks.gmn --dataset contract --dataset-dir DIR

A contract directory brings its own two sides: rows with `item_type` video
and item (`--video_domain` does not apply to it).

Writes `benchmarks/results/gmn_<video_domain or contract-<dir>>[_<tag>].json`
and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from benchmarks import common
from data import dual_graph
from data import features
from data import importers
from models.item_item import fitters as item_item_fitters
from models.retrieval import gmn
from models.retrieval import two_tower
from models import training
from offline_eval import datasets
from offline_eval import item_item
from offline_eval import protocols
from offline_eval import reporting
from transforms import dual_graph as dual_graph_tensors

DATASET = "amazon-video-games"
DATASETS = {"game_video": DATASET, "video_game": "amazon-video-games-swapped"}
VARIANTS = gmn.ABLATIONS
BASELINE = "a_two_tower_videos_only"
FULL_RANKING_KS = (20, 50)
METRICS = ("recall@20", "recall@50", "ndcg@20", "sampled_auc")
# What the closed-form baselines are tuned on, on validation.
CLASSICAL_SELECTION_METRIC = "recall@20"
# Node types each closed-form row fits and reads, by row suffix.
CLASSICAL_SIDES = {"": (dual_graph.VIDEO,),
                   "_both_sides": (dual_graph.VIDEO, dual_graph.ITEM)}
CLASSICAL = {f"{family}{suffix}": (family, sides)
             for family in item_item_fitters.FITTERS
             for suffix, sides in CLASSICAL_SIDES.items()}
DEFAULT_CLASSICAL = ("ease", "item_knn", "item_knn_both_sides")


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """Everything a variant needs, shared by all variants and seeds."""
  vocabulary: dual_graph.NodeVocabulary
  graph: dual_graph.DualGraph
  train: pd.DataFrame
  validation: pd.DataFrame
  train_user_rows: np.ndarray
  train_videos: np.ndarray
  eval_user_rows: np.ndarray
  targets: list
  exclude: list
  negatives: np.ndarray
  negative_rows: np.ndarray
  negative_positives: np.ndarray


def prepare(args, dataset_name: str) -> Benchmark:
  """Imports the data, splits it and builds the dual graph and eval sets."""
  log = common.load_interactions(dataset_name, args,
                                 args.data_root).interactions
  if args.users == "shared":
    log = log[log["user_id"].isin(dual_graph.shared_users(log))]
  train, heldout = dual_graph.split_shared_user_videos(
      log, args.holdout_fraction, args.split_seed)
  # The closed-form baselines' validation videos, carved from train as the
  # held-out videos were from the log; no neural variant reads them apart.
  _, validation = dual_graph.split_shared_user_videos(
      train, args.holdout_fraction, args.split_seed)
  print(f"[data] {dataset_name}", flush=True)
  return build(log, train, heldout, validation, args)


def build(log: pd.DataFrame, train: pd.DataFrame, heldout: pd.DataFrame,
          validation: pd.DataFrame, args) -> Benchmark:
  """The dual graph of `train` and the eval sets of `heldout`.

  Args:
    log: every interaction (the node vocabulary).
    train: the rows models train on.
    heldout: the test videos, none of them in `train`.
    validation: the closed-form baselines' validation videos, rows of
      `train`.
    args: the benchmark's arguments (neighbour caps, negatives, seed).
  """
  vocabulary = dual_graph.node_vocabulary(log)
  graph = dual_graph.build_dual_graph(
      train, vocabulary,
      dual_graph.DualGraphConfig(max_video_neighbours=args.max_neighbours,
                                 max_item_neighbours=args.max_neighbours,
                                 neighbour_order=args.neighbour_order,
                                 seed=args.split_seed))
  train_videos = train[train["item_type"] == dual_graph.VIDEO]
  eval_users = np.sort(heldout["user_id"].unique())
  targets, seen, exclude = _ranking_sets(heldout, train_videos, eval_users,
                                         vocabulary)
  # One sampled-AUC row per held-out video, negatives drawn per row.
  negative_rows = np.repeat(np.arange(len(eval_users)), [len(t) for t in targets])
  negative_positives = np.concatenate(targets)
  interacted = [np.concatenate([seen[row], targets[row]]) for row in negative_rows]
  negatives = protocols.sample_negatives(vocabulary.num_videos + 1, interacted,
                                         args.num_negatives, args.split_seed, low=1)
  print(f"[data] videos={vocabulary.num_videos} "
        f"items={len(vocabulary.node_ids) - vocabulary.num_videos} "
        f"train video edges={len(train_videos)} users={len(graph.user_ids)} "
        f"eval users={len(eval_users)} held-out videos={len(heldout)} "
        f"validation videos={len(validation)}", flush=True)
  return Benchmark(
      vocabulary=vocabulary, graph=graph, train=train, validation=validation,
      train_user_rows=graph.user_rows(train_videos["user_id"]),
      train_videos=vocabulary.lookup(train_videos["item_id"]),
      eval_user_rows=graph.user_rows(eval_users), targets=targets,
      exclude=exclude, negatives=negatives, negative_rows=negative_rows,
      negative_positives=negative_positives)


def _ranking_sets(heldout, train_videos, users, vocabulary
                  ) -> tuple[list, list, list]:
  """Per user of `users`: held-out videos, train videos, and the excluded
  candidates (the train videos and index 0, padding)."""
  targets = _indices_per_user(heldout, users, vocabulary)
  seen = _indices_per_user(train_videos, users, vocabulary)
  return targets, seen, [np.append(videos, 0) for videos in seen]


def _indices_per_user(frame, users, vocabulary) -> list:
  """Node indices of each user's rows of `frame`, in `users` order."""
  rows = pd.Index(users).get_indexer(frame["user_id"])
  indices = vocabulary.lookup(frame["item_id"])[rows >= 0]
  rows = rows[rows >= 0]
  order = np.argsort(rows, kind="stable")
  boundaries = np.cumsum(np.bincount(rows, minlength=len(users)))[:-1]
  return np.split(indices[order], boundaries)


def _query_features(bench: Benchmark, user_rows, targets=None):
  videos = tf.gather(bench.graph.video_neighbours, user_rows)
  if targets is not None:
    videos = dual_graph_tensors.drop_target(videos, targets)
  return {features.VIDEO_NEIGHBOUR_INDICES: videos,
          features.ITEM_NEIGHBOUR_INDICES: tf.gather(bench.graph.item_neighbours,
                                                     user_rows)}


def train_and_evaluate(bench: Benchmark, config: gmn.GmnConfig,
                       seed: int) -> dict[str, float]:
  """Trains one variant with one seed and returns its metrics."""
  tf.keras.utils.set_random_seed(seed)
  size = bench.vocabulary.size
  counts = np.bincount(bench.train_videos, minlength=size)
  model = gmn.build_gmn(
      two_tower.VocabularySizes(users=0, items=size, title_tokens=0, categories=0),
      {features.ITEM_INDEX: np.arange(size, dtype=np.int64)},
      counts / counts.sum(), config)
  batches = training.shuffled_batches(
      {"user_rows": bench.train_user_rows,
       features.ITEM_INDEX: bench.train_videos}, config.batch_size, seed,
      map_batch=lambda batch: {
          features.ITEM_INDEX: batch[features.ITEM_INDEX],
          **_query_features(bench, batch["user_rows"],
                            batch[features.ITEM_INDEX])})
  start = time.time()
  history = training.fit(model, batches, config.learning_rate, config.epochs)
  losses = ", ".join(f"{loss:.1f}" for loss in history["loss"])
  print(f"    trained {config.epochs} epochs in {time.time() - start:.0f}s "
        f"(loss {losses})", flush=True)

  candidates = model.candidate_tower(
      {features.ITEM_INDEX: tf.range(bench.vocabulary.num_videos + 1,
                                     dtype=tf.int64)}).numpy()
  queries = np.concatenate([
      model.query_tower(_query_features(bench, rows)).numpy()
      for rows in np.array_split(bench.eval_user_rows,
                                 max(1, len(bench.eval_user_rows) // 512))])
  return score(queries @ candidates.T, bench)


def score(scores: np.ndarray, bench: Benchmark) -> dict[str, float]:
  """Full-ranking and sampled-AUC metrics of `[eval users, videos + 1]`
  scores (column 0 is padding)."""
  ranking = protocols.full_ranking(
      lambda users: scores[users], np.arange(len(scores)), bench.targets,
      bench.exclude, ks=FULL_RANKING_KS)
  positives = scores[bench.negative_rows, bench.negative_positives]
  negatives = scores[bench.negative_rows[:, np.newaxis], bench.negatives]
  ranking["sampled_auc"] = protocols.sampled_auc(positives, negatives)
  return {name: ranking[name] for name in METRICS}


def popularity(bench: Benchmark) -> dict[str, float]:
  """MostPop through the same scorer: every user scores videos by count."""
  counts = protocols.popularity_scores(bench.train_videos,
                                       bench.vocabulary.num_videos + 1)
  return score(np.tile(counts, (len(bench.eval_user_rows), 1)), bench)


def classical(bench: Benchmark, row: str) -> tuple[dict[str, float], dict]:
  """Tunes, refits and scores one closed-form row (a key of `CLASSICAL`).

  Returns:
    The row's metrics, and what was chosen with every setting's validation
    metric.
  """
  family, sides = CLASSICAL[row]
  num_videos = bench.vocabulary.num_videos

  # Videos take node indices 1..num_videos, items the ones after: a
  # videos-only fit has no item columns (EASE^R's inverse is columns²).
  columns = (bench.vocabulary.size if dual_graph.ITEM in sides
             else num_videos + 1)

  def histories(frame: pd.DataFrame):
    """Every graph user's nodes of `sides` in `frame`, as X."""
    frame = frame[frame["item_type"].isin(sides)]
    return item_item.history_matrix(
        _indices_per_user(frame, bench.graph.user_ids, bench.vocabulary),
        columns)

  fit_log = bench.train.drop(bench.validation.index)
  fit_histories = histories(fit_log)
  validation_users = np.sort(bench.validation["user_id"].unique())
  validation_rows = bench.graph.user_rows(validation_users)
  validation_targets, _, validation_exclude = _ranking_sets(
      bench.validation, fit_log[fit_log["item_type"] == dual_graph.VIDEO],
      validation_users, bench.vocabulary)

  def validate(neighbours) -> float:
    scorer = item_item.ItemItemScorer(neighbours, fit_histories)
    return protocols.full_ranking(
        lambda users: scorer.score_all(validation_rows[users])[
            :, :num_videos + 1],
        np.arange(len(validation_users)), validation_targets,
        validation_exclude, ks=FULL_RANKING_KS)[CLASSICAL_SELECTION_METRIC]

  started = time.time()
  tuned = item_item.tune(family, fit_histories, validate)
  train_histories = histories(bench.train)
  neighbours = item_item_fitters.FITTERS[family].fit(train_histories, tuned.config)
  scores = item_item.ItemItemScorer(neighbours, train_histories).score_all(
      bench.eval_user_rows)[:, :num_videos + 1]
  chosen = {"hparams": {name: getattr(tuned.config, name)
                        for name in tuned.validation[0]["hparams"]},
            "validation": tuned.validation,
            "validation_metric": CLASSICAL_SELECTION_METRIC,
            "validation_videos": int(len(bench.validation)),
            "seconds": round(time.time() - started, 1)}
  return score(scores, bench), chosen


def table(results: Mapping[str, Mapping[str, dict]], baseline: str) -> str:
  """One row per variant and baseline, then the strongest baseline's verdict."""
  rows = []
  for name, stats in results.items():
    ratio = stats["recall@20"]["mean"] / results[baseline]["recall@20"]["mean"]
    rows.append([name] + [reporting.format_mean_std(stats[metric])
                          for metric in METRICS] + [f"{ratio:.3f}"])
  return reporting.markdown_table(
      ["variant"] + [f"{m} (mean ± std)" for m in METRICS]
      + [f"recall@20 / {baseline}"], rows) + "\n\n" + verdict(results)


def verdict(results: Mapping[str, Mapping[str, dict]]) -> str:
  """Names the strongest baseline by mean recall@20 and the variants whose
  mean beats it by more than their seed std."""
  baselines = [name for name in results if name not in VARIANTS]
  strongest = max(baselines,
                  key=lambda name: results[name]["recall@20"]["mean"])
  bar = results[strongest]["recall@20"]["mean"]
  winners = [name for name in results if name in VARIANTS
             and results[name]["recall@20"]["mean"]
             - results[name]["recall@20"]["std"] > bar]
  return (f"Strongest baseline by recall@20: {strongest} ({bar:.4f}); "
          "variants above it by more than their seed std: "
          + (", ".join(winners) or "none"))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, [DATASET], DATASET)
  parser.add_argument("--data_root", default=str(importers.default_source_root()),
                      help="folder holding amazon-video-games/")
  parser.add_argument("--video_domain", choices=sorted(DATASETS) + ["both"],
                      default="game_video",
                      help="upstream folder used as the video side; 'both' runs "
                           f"each direction (--dataset {DATASET} only)")
  parser.add_argument("--users", choices=("shared", "all"), default="shared",
                      help="'shared': the dual graph of the users active in both "
                           "domains (CDRIB's common subset, its videos are the "
                           "catalogue); 'all': every user trains, the item side "
                           "empty for single-domain users")
  parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS),
                      default=list(VARIANTS),
                      help="GMN variants (none: the baselines only)")
  parser.add_argument("--classical", nargs="*", choices=sorted(CLASSICAL),
                      default=list(DEFAULT_CLASSICAL),
                      help="closed-form baseline rows (none: no argument)")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--split_seed", type=int, default=0,
                      help="seed of the held-out split and of negative sampling")
  parser.add_argument("--holdout_fraction", type=float, default=0.2)
  parser.add_argument("--max_neighbours", type=int, default=32,
                      help="cap on each side's neighbour list")
  parser.add_argument("--neighbour_order", default=dual_graph.ORDER_RECENT,
                      choices=(dual_graph.ORDER_RECENT, dual_graph.ORDER_SAMPLED))
  parser.add_argument("--num_negatives", type=int, default=99)
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--learning_rate", type=float, default=0.003)
  parser.add_argument("--embedding_dim", type=int, default=32)
  parser.add_argument("--temperature", type=float, default=0.05)
  parser.add_argument("--num_preferences", type=int, default=4)
  parser.add_argument("--matching", default="softmax",
                      choices=("softmax", "sinkhorn"))
  parser.add_argument("--tag", default="",
                      help="suffix of the results file, for runs beside the "
                      "default configuration: gmn_<video_domain>_<tag>.json")
  return parser.parse_args(argv)


def run_direction(args, label: str, dataset_name: str) -> dict:
  """Every variant and seed on one dataset (one direction of the pair)."""
  bench = prepare(args, dataset_name)
  results = {"most_popular": reporting.aggregate_seeds([popularity(bench)])}
  classical_choices = {}
  for row in args.classical:
    metrics, classical_choices[row] = classical(bench, row)
    results[row] = reporting.aggregate_seeds([metrics])
    print(f"[{label}] {row} {classical_choices[row]['hparams']} in "
          f"{classical_choices[row]['seconds']:.0f}s: "
          + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)
  for name in args.variants:
    config = gmn.GmnConfig(
        embedding_dim=args.embedding_dim,
        tower_units=(2 * args.embedding_dim, args.embedding_dim),
        temperature=args.temperature, learning_rate=args.learning_rate,
        epochs=args.epochs, batch_size=args.batch_size,
        num_preferences=args.num_preferences, matching=args.matching,
        max_neighbours=args.max_neighbours,
        **VARIANTS[name])
    runs = []
    for seed in args.seeds:
      print(f"[{label}] {name} seed {seed}", flush=True)
      runs.append(train_and_evaluate(bench, config, seed))
      print("    " + ", ".join(f"{k}={v:.4f}" for k, v in runs[-1].items()),
            flush=True)
    results[name] = reporting.aggregate_seeds(runs)
  markdown = table(results, BASELINE if BASELINE in results
                   else next(iter(args.variants), "most_popular"))
  print(f"\nVideos = {label}\n\n{markdown}\n", flush=True)
  return {"video_domain": label, "dataset": dataset_name,
          "eval_users": int(len(bench.eval_user_rows)),
          "heldout_videos": int(len(bench.negative_rows)),
          "results": results, "classical": classical_choices,
          "table": markdown}


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(argv)
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  if args.dataset == datasets.CONTRACT:
    directions = {common.dataset_label(args.dataset, args): datasets.CONTRACT}
  else:
    domains = (sorted(DATASETS) if args.video_domain == "both"
               else [args.video_domain])
    directions = {domain: DATASETS[domain] for domain in domains}
  start = time.time()
  for label, dataset_name in directions.items():
    payload = run_direction(args, label, dataset_name)
    payload.update(args=vars(args),
                   command=common.command("benchmarks.gmn", argv),
                   machine=common.machine(), wall_seconds=time.time() - start)
    suffix = f"_{args.tag}" if args.tag else ""
    common.write_results(common.RESULTS_DIR / f"gmn_{label}{suffix}.json",
                         payload)


if __name__ == "__main__":
  main()
