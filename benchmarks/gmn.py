"""GMN against graph-CF and item-item baselines on the whole dual graph.

Video retrieval on a two-domain Amazon log, one side the videos and the
other the items (`--dataset`: any importer whose log has both item types;
`amazon-video-games` takes `--video_domain` for its direction). Every user of
both sides trains. The data has no timestamps, so the test videos are a
seeded random hold-out (`dual_graph.split_user_videos`, `--split_seed`, the
same for every model seed): a `--holdout_fraction` of the videos of every
user with at least two, and validation videos are carved from train the same
way (`benchmarks.gmn_setup`). Every row is scored on the test users by full
ranking over the video catalogue, the user's train videos excluded:
Recall@20/50 and NDCG@20, over all users and per slice (train videos 0-2,
3-9, 10+; with and without items; the paper's case, 0-2 videos with items).

Rows, all on the same split:
- `most_popular`; `ease`, `item_knn` (user-video edges) and
  `*_both_sides` (the items as extra columns), tuned on validation and
  refitted on train (`--classical`; `benchmarks.gmn_baselines`);
- `lightgcn_videos_only` (graph of user-video edges) and `lightgcn_joint`
  (user-video and user-item edges; videos ranked), layers, embedding size
  and L2 tuned on validation (`--lightgcn_*`);
- GMN's ablation ladder (`gmn.ABLATIONS`): (a) videos-only two-tower, (b)
  both sides pooled (the two-tower with both sides' histories), (c)-(e)
  node-level, preference-level and both matching levels.
Neural rows train on train without the validation videos and stop early on
them (`--patience`, `--max_epochs`), keeping the best epoch's weights; mean
± std over `--seeds`. The `--gmn_*` flags tune the ablation rows' learning
rate, temperature, propagation layers and K on validation, one field at a
time with the first seed (`gmn_setup.coordinate_search`), as LightGCN's grid
is. `--baselines_from` joins the rows of earlier runs on the same split
(each file's rows that this run and the files before it lack), so a tuning
run need not refit the baselines, and runs of different rows made side by
side make one table. Each row reports its training seconds, its seconds to
99% of its best validation score, and its catalogue (videos ranked, nodes
represented).

    python -m benchmarks.gmn --dataset amazon-video-games --video_domain both
    python -m benchmarks.gmn --dataset amazon-books-movies
    python -m benchmarks.gmn --dataset amazon-books-movies-dense
    python -m benchmarks.gmn --dataset contract --dataset-dir DIR
    python -m benchmarks.gmn --dataset amazon-books-movies-dense \
        --variants e_full_gmn --classical --lightgcn \
        --gmn_learning_rates 0.003 0.001 0.01 --gmn_temperatures 0.05 0.1 0.2 \
        --baselines_from benchmarks/results/gmn_amazon-books-movies-dense.json

(`--datasets A B ...` runs several and ends with one summary.) Writes
`benchmarks/results/gmn_<label>[_<tag>].json` per dataset (label: the video
domain for amazon-video-games, else the dataset) and prints per slice the
rows, the strongest baseline and whether GMN beats it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import gmn_baselines
from benchmarks import gmn_setup
from data import dual_graph
from data import features
from data import importers
from models import training
from models.retrieval import gmn
from models.retrieval import lightgcn
from models.retrieval import two_tower
from offline_eval import reporting
from transforms import dual_graph as dual_graph_tensors

DATASET = "amazon-video-games"
# amazon-video-games' directions: the upstream folder that is the video side.
VIDEO_DOMAINS = {"game_video": DATASET,
                 "video_game": "amazon-video-games-swapped"}
VARIANTS = gmn.ABLATIONS
GMN_ROW = "e_full_gmn"
# The ablation ladder's two-towers, baselines for the verdict: no matching.
TWO_TOWER_BASELINES = ("a_two_tower_videos_only", "b_pooled_both_sides")
# Ablation rows that read only the video side.
VIDEOS_ONLY_VARIANTS = tuple(name for name, switches in VARIANTS.items()
                             if switches.get("use_item_side") is False)
# GmnConfig fields the ablation rows are tuned over on validation, in search
# order, and the flag listing each one's values.
TUNED_FIELDS = {"learning_rate": "gmn_learning_rates",
                "temperature": "gmn_temperatures",
                "propagation_layers": "gmn_layers",
                "num_preferences": "gmn_preferences"}
# What a run read from `--baselines_from` must share with this one.
SPLIT_KEYS = ("dataset", "split", "split_seed", "slice_users", "test_videos",
              "validation_videos")


def build_gmn_model(bench: gmn_setup.Benchmark, config: gmn.GmnConfig
                    ) -> two_tower.RetrievalModel:
  """GMN over the node space, with the `fit` edges of both sides as the
  graph its propagation reads (users numbered by their benchmark row)."""
  size = bench.vocabulary.size
  _, videos = bench.edges(bench.fit, gmn_baselines.VIDEOS_ONLY)
  counts = np.bincount(videos, minlength=size)
  return gmn.build_gmn(
      two_tower.VocabularySizes(users=0, items=size, title_tokens=0,
                                categories=0),
      {features.ITEM_INDEX: np.arange(size, dtype=np.int64)},
      counts / counts.sum(), config,
      edges=bench.edges(bench.fit, gmn_baselines.BOTH_SIDES))


def _query_features(graph: dual_graph.DualGraph, user_rows, targets=None):
  videos = tf.gather(graph.video_neighbours, user_rows)
  if targets is not None:
    videos = dual_graph_tensors.drop_target(videos, targets)
  return {features.VIDEO_NEIGHBOUR_INDICES: videos,
          features.ITEM_NEIGHBOUR_INDICES: tf.gather(graph.item_neighbours,
                                                     user_rows)}


def train_and_evaluate(bench: gmn_setup.Benchmark, name: str,
                       config: gmn.GmnConfig, seed: int
                       ) -> tuple[dict, dict]:
  """Trains one variant with one seed on `fit`, stopping on validation.

  Training and validation queries read the `fit` neighbour lists; test
  queries the `train` ones, which add the validation videos.

  Returns:
    The metrics by slice, and the timing.
  """
  tf.keras.utils.set_random_seed(seed)
  model = build_gmn_model(bench, config)
  users, videos = bench.edges(bench.fit, gmn_baselines.VIDEOS_ONLY)
  batches = training.shuffled_batches(
      {"user_rows": users, features.ITEM_INDEX: videos}, config.batch_size,
      seed, map_batch=lambda batch: {
          features.ITEM_INDEX: batch[features.ITEM_INDEX],
          **_query_features(bench.fit_graph, batch["user_rows"],
                            batch[features.ITEM_INDEX])})

  def scores(graph: dual_graph.DualGraph, user_rows: np.ndarray):
    """The score function of `user_rows` queried from `graph`."""
    candidates = model.candidate_tower({features.ITEM_INDEX: tf.range(
        bench.num_candidates, dtype=tf.int64)}).numpy()
    queries = np.concatenate([
        model.query_tower(_query_features(graph, rows)).numpy()
        for rows in np.array_split(user_rows, max(1, len(user_rows) // 1024))])
    return gmn_setup.embedding_scores(queries, candidates)

  timing = gmn_setup.fit_validated(
      model, batches, config,
      lambda: gmn_setup.validation_score(
          scores(bench.fit_graph, bench.validation_set.rows), bench), name)
  return gmn_setup.score(scores(bench.graph, bench.test.rows),
                         bench.test), timing


def _catalogue(bench: gmn_setup.Benchmark, row: str, config=None) -> dict:
  """What a row ranks and represents: `videos_ranked`, and `nodes`, the
  embedding rows a neural row learns (users included where it embeds them)
  or the item-item columns of a closed-form one."""
  videos = bench.vocabulary.num_videos
  items = len(bench.vocabulary.node_ids) - videos
  fit_users = len(np.unique(bench.edges(bench.fit, gmn_baselines.BOTH_SIDES)[0]))
  if row in VARIANTS:
    nodes = videos if row in VIDEOS_ONLY_VARIANTS else videos + items
    # Propagation embeds the users of its graph at layer 0.
    nodes += fit_users if config.propagation_layers else 0
  elif row in gmn_baselines.LIGHTGCN:
    nodes = (len(bench.user_ids)
             + gmn_baselines.columns(bench, gmn_baselines.LIGHTGCN[row]) - 1)
  elif row in gmn_baselines.CLASSICAL:
    nodes = gmn_baselines.columns(bench, gmn_baselines.CLASSICAL[row][1]) - 1
  else:
    nodes = videos
  return {"videos_ranked": videos, "nodes": nodes}


def _row(runs: Sequence[tuple[dict, dict]], seeds: Sequence,
         catalogue: dict, **extra) -> dict:
  """A row's JSON: every run, the seed means by slice and the timings."""
  slices = list(runs[0][0])
  return {"runs": [{"seed": seed, "metrics": metrics, "timing": timing}
                   for seed, (metrics, timing) in zip(seeds, runs)],
          "mean": {name: reporting.aggregate_seeds(
              [metrics[name] for metrics, _ in runs]) for name in slices},
          "timing": reporting.aggregate_seeds(
              [{key: timing[key] for key in ("train_seconds",
                                              "seconds_to_quality")}
               for _, timing in runs]),
          "catalogue": catalogue, **extra}


def _log_run(label: str, row: str, seed, metrics: dict) -> None:
  print(f"[{label}] {row} seed {seed}: " + ", ".join(
      f"{name}={value:.4f}"
      for name, value in metrics[dual_graph.SLICE_ALL].items()), flush=True)


def gmn_config(args, name: str) -> gmn.GmnConfig:
  """The configuration of the ablation row `name`."""
  return gmn.GmnConfig(
      embedding_dim=args.embedding_dim,
      tower_units=(2 * args.embedding_dim, args.embedding_dim),
      temperature=args.temperature, learning_rate=args.learning_rate,
      epochs=args.max_epochs, early_stopping_patience=args.patience,
      batch_size=args.batch_size, num_preferences=args.num_preferences,
      matching=args.matching, max_neighbours=args.max_neighbours,
      **VARIANTS[name])


def search_axes(args, name: str, config: gmn.GmnConfig
                ) -> dict[str, list]:
  """The `TUNED_FIELDS` the flags list values for, without those the ablation
  row `name` does not read: propagation for the videos-only two-tower (it
  reads no graph), K where no preference is extracted."""
  axes = {field: getattr(args, flag) for field, flag in TUNED_FIELDS.items()
          if getattr(args, flag)}
  if name in VIDEOS_ONLY_VARIANTS:
    axes.pop("propagation_layers", None)
  if not config.preference_matching:
    axes.pop("num_preferences", None)
  return axes


def _seeded_row(label: str, row: str, seeds: Sequence[int], train_seed,
                catalogue: dict, first=None, **extra) -> dict:
  """A row of one setting over `seeds`: `train_seed(seed)` runs each seed;
  a tuned row's `first`, the chosen setting's tuning run, stands for the
  first seed instead."""
  runs = []
  for seed in seeds:
    runs.append(first if first is not None and not runs else train_seed(seed))
    _log_run(label, row, seed, runs[-1][0])
  return _row(runs, seeds, catalogue, **extra)


def lightgcn_rows(bench: gmn_setup.Benchmark, args, label: str) -> dict:
  """Each LightGCN row: tuned on validation with the first seed, then the
  chosen setting with every other seed."""
  base = lightgcn.LightGcnConfig(
      learning_rate=args.lightgcn_learning_rate,
      batch_size=args.lightgcn_batch_size, epochs=args.max_epochs,
      early_stopping_patience=args.patience)
  grid = gmn_baselines.LightGcnGrid(args.lightgcn_layers, args.lightgcn_dims,
                                    args.lightgcn_l2)
  rows = {}
  for row in args.lightgcn:
    started = time.perf_counter()
    chosen, first, searched = gmn_baselines.tune_lightgcn(
        bench, row, base, grid, args.seeds[0])
    rows[row] = _seeded_row(
        label, row, args.seeds,
        lambda seed: gmn_baselines.lightgcn(bench, row, chosen, seed),
        _catalogue(bench, row), first, tuning={
            "chosen": {"num_layers": chosen.num_layers,
                       "embedding_dim": chosen.embedding_dim,
                       "embedding_l2": chosen.embedding_l2},
            "searched": searched,
            "seconds": round(time.perf_counter() - started, 1),
            "metric": gmn_setup.SELECTION_METRIC})
  return rows


def variant_row(bench: gmn_setup.Benchmark, args, label: str, name: str
                ) -> dict:
  """One ablation row, every seed; tuned on validation first (one field at a
  time, with the first seed) where the `--gmn_*` flags list values."""
  config = gmn_config(args, name)
  axes = search_axes(args, name, config)
  if not axes:
    return _seeded_row(
        label, name, args.seeds,
        lambda seed: train_and_evaluate(bench, name, config, seed),
        _catalogue(bench, name, config))
  started = time.perf_counter()
  chosen, first, searched = gmn_setup.coordinate_search(
      config, axes,
      lambda candidate: train_and_evaluate(bench, name, candidate,
                                           args.seeds[0]), name)
  return _seeded_row(
      label, name, args.seeds,
      lambda seed: train_and_evaluate(bench, name, chosen, seed),
      _catalogue(bench, name, chosen), first, tuning={
          "chosen": {field: getattr(chosen, field) for field in axes},
          "searched": searched,
          "seconds": round(time.perf_counter() - started, 1),
          "metric": gmn_setup.SELECTION_METRIC,
          "search": "one field at a time, in the order listed"})


def rows_from(path: pathlib.Path, result: Mapping) -> dict:
  """The rows of an earlier run on the same split that `result` lacks.

  Raises:
    SystemExit: the earlier run's dataset or split differs.
  """
  earlier = json.loads(path.read_text())
  for key in SPLIT_KEYS:
    if earlier.get(key) != result[key]:
      raise SystemExit(f"{path}: its {key} {earlier.get(key)!r} is not this "
                       f"run's {result[key]!r}; its rows are on another split")
  return {name: row for name, row in earlier["rows"].items()
          if name not in result["rows"]}


def join_rows_from(result: dict, paths: Sequence[str]) -> None:
  """Adds to `result` each file's rows that it and the files before lack,
  and records which rows came from where (`rows_from`).

  Raises:
    SystemExit: a file's dataset or split differs from `result`'s.
  """
  result["rows_from"] = []
  for path in paths:
    earlier = rows_from(pathlib.Path(path), result)
    result["rows"].update(earlier)
    result["rows_from"].append({"path": path, "rows": sorted(earlier)})


def run_dataset(args, label: str, dataset_name: str) -> dict:
  """Every row and seed on one dataset (one direction of a pair)."""
  log = common.load_interactions(dataset_name, args,
                                 args.data_root).interactions
  if set(log["item_type"].unique()) != {dual_graph.VIDEO, dual_graph.ITEM}:
    raise SystemExit(f"{dataset_name}: the dual graph needs rows of item_type "
                     f"{dual_graph.VIDEO!r} and {dual_graph.ITEM!r}")
  if args.users == "shared":
    log = log[log["user_id"].isin(dual_graph.shared_users(log))]
  train, heldout, validation = gmn_setup.split(
      log, args.holdout_fraction, args.split_seed, args.users == "shared")
  bench = gmn_setup.build(log, train, heldout, validation,
                          dual_graph.DualGraphConfig(
                              max_video_neighbours=args.max_neighbours,
                              max_item_neighbours=args.max_neighbours,
                              neighbour_order=args.neighbour_order,
                              seed=args.split_seed))
  print(gmn_setup.describe(bench, label), flush=True)
  # Deterministic rows: one run stands for every seed.
  one_run = ["all"]
  rows = {"most_popular": _row([gmn_baselines.popularity(bench)], one_run,
                               _catalogue(bench, "most_popular"))}
  _log_run(label, "most_popular", "all", rows["most_popular"]["runs"][0]["metrics"])
  for row in args.classical:
    run = gmn_baselines.classical(bench, row)
    rows[row] = _row([run], one_run, _catalogue(bench, row))
    _log_run(label, f"{row} {run[1]['hparams']}", "all", run[0])
  rows.update(lightgcn_rows(bench, args, label))
  for name in args.variants:
    rows[name] = variant_row(bench, args, label, name)
  return {"dataset": dataset_name, "split": gmn_setup.SPLIT_NOTE,
          "split_seed": args.split_seed,
          "slice_users": {name: int(mask.sum())
                          for name, mask in bench.test.slices.items()},
          "test_videos": int(sum(map(len, bench.test.targets))),
          "validation_videos": int(len(bench.validation)),
          "rows": rows}


def baselines(rows: Mapping[str, dict]) -> list[str]:
  """The rows GMN is measured against: all but the matching variants."""
  return [name for name in rows
          if name not in VARIANTS or name in TWO_TOWER_BASELINES]


def verdict(rows: Mapping[str, dict], slice_name: str) -> dict:
  """The strongest baseline of a slice by mean Recall@20, and the matching
  variants whose mean beats it by more than their seed std."""
  def recall(name):
    return rows[name]["mean"][slice_name]["recall@20"]

  strongest = max(baselines(rows), key=lambda name: recall(name)["mean"])
  bar = recall(strongest)["mean"]
  winners = [name for name in rows if name not in baselines(rows)
             and recall(name)["mean"] - recall(name)["std"] > bar]
  return {"strongest_baseline": strongest, "recall@20": bar,
          "gmn_beats_it": GMN_ROW in winners, "variants_above": winners}


def report(label: str, result: Mapping) -> str:
  """Per slice, every row's mean ± std and the verdict; then the timings."""
  rows = result["rows"]
  parts = [f"## {label}: {result['dataset']}, test videos by "
           f"{result['split']}, split seed {result['split_seed']}"]
  for earlier in result.get("rows_from", []):
    parts.append(f"Rows read from {earlier['path']} (an earlier run on this "
                 "split): " + ", ".join(earlier["rows"]))
  for slice_name, users in result["slice_users"].items():
    if not users:
      parts.append(f"### {slice_name}: no test user")
      continue
    lines = [[name] + [reporting.format_mean_std(
        rows[name]["mean"][slice_name][metric]) for metric in
                       gmn_setup.METRICS] for name in rows]
    found = verdict(rows, slice_name)
    parts.append(
        f"### {slice_name} ({users} test users)\n\n"
        + reporting.markdown_table(
            ["row"] + [f"{metric} (mean ± std)"
                       for metric in gmn_setup.METRICS], lines)
        + f"\n\nStrongest baseline: {found['strongest_baseline']} "
        f"(recall@20 {found['recall@20']:.4f}); {GMN_ROW} beats it by more "
        f"than its seed std: {'yes' if found['gmn_beats_it'] else 'no'}; "
        "matching variants that do: "
        + (", ".join(found["variants_above"]) or "none"))
  timings = [[name, reporting.format_mean_std(
      rows[name]["timing"]["train_seconds"], 1), reporting.format_mean_std(
          rows[name]["timing"]["seconds_to_quality"], 1),
              rows[name]["catalogue"]["videos_ranked"],
              rows[name]["catalogue"]["nodes"]] for name in rows]
  parts.append("### Time to quality and catalogue\n\n" + reporting.markdown_table(
      ["row", "train s", f"s to {gmn_setup.QUALITY_FRACTION:.0%} of best "
       "validation", "videos ranked", "nodes"], timings))
  return "\n\n".join(parts)


def summary(results: Mapping[str, Mapping]) -> str:
  """Datasets x slices: the strongest baseline, GMN, and who wins."""
  lines = []
  for label, result in results.items():
    for slice_name, users in result["slice_users"].items():
      if not users:
        continue
      found = verdict(result["rows"], slice_name)
      gmn_stats = result["rows"].get(GMN_ROW, {}).get("mean", {})
      lines.append([
          label, slice_name, users,
          f"{found['strongest_baseline']} {found['recall@20']:.4f}",
          reporting.format_mean_std(gmn_stats[slice_name]["recall@20"])
          if gmn_stats else "not run",
          "yes" if found["gmn_beats_it"] else "no"])
  return ("Recall@20, test videos by seeded random hold-out (no timestamps)"
          "\n\n" + reporting.markdown_table(
              ["dataset", "slice", "test users", "strongest baseline",
               f"{GMN_ROW} (mean ± std)", "GMN beats it"], lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS), [DATASET],
                               multiple=True)
  parser.add_argument("--data_root", default=str(importers.default_source_root()),
                      help="folder holding the datasets' upstream folders")
  parser.add_argument("--video_domain", choices=sorted(VIDEO_DOMAINS) + ["both"],
                      default="game_video",
                      help=f"{DATASET} only: the upstream folder used as the "
                      "video side; 'both' runs each direction")
  parser.add_argument("--users", choices=("shared", "all"), default="all",
                      help="'all': the whole dual graph, test videos from "
                      "every user with two or more; 'shared': only the users "
                      "active on both sides (CDRIB's common subset)")
  parser.add_argument("--variants", nargs="*", choices=sorted(VARIANTS),
                      default=list(VARIANTS),
                      help="GMN ablation rows (none: the baselines only)")
  parser.add_argument("--classical", nargs="*",
                      choices=sorted(gmn_baselines.CLASSICAL),
                      default=list(gmn_baselines.DEFAULT_CLASSICAL),
                      help="closed-form rows; ease_both_sides inverts a "
                      "(videos + items)² matrix per λ")
  parser.add_argument("--lightgcn", nargs="*",
                      choices=sorted(gmn_baselines.LIGHTGCN),
                      default=list(gmn_baselines.LIGHTGCN),
                      help="LightGCN rows (none: no LightGCN)")
  grid = gmn_baselines.LightGcnGrid()
  parser.add_argument("--lightgcn_layers", type=int, nargs="+",
                      default=list(grid.num_layers),
                      help="LightGCN layer counts tuned over")
  parser.add_argument("--lightgcn_dims", type=int, nargs="+",
                      default=list(grid.embedding_dims),
                      help="LightGCN embedding sizes tuned over")
  parser.add_argument("--lightgcn_l2", type=float, nargs="+",
                      default=list(grid.embedding_l2),
                      help="LightGCN L2 penalties tuned over")
  parser.add_argument("--lightgcn_learning_rate", type=float, default=0.005)
  parser.add_argument("--lightgcn_batch_size", type=int, default=2048)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                      help="model seeds; the split's is --split_seed")
  parser.add_argument("--split_seed", type=int, default=0,
                      help="seed of the test and validation hold-outs")
  parser.add_argument("--holdout_fraction", type=float, default=0.2)
  parser.add_argument("--max_neighbours", type=int, default=32,
                      help="cap on each side's neighbour list")
  parser.add_argument("--neighbour_order", default=dual_graph.ORDER_RECENT,
                      choices=(dual_graph.ORDER_RECENT, dual_graph.ORDER_SAMPLED))
  parser.add_argument("--max_epochs", type=int,
                      default=two_tower.VALIDATED_EPOCH_BUDGET,
                      help="the neural rows' epoch budget")
  parser.add_argument("--patience", type=int, default=3,
                      help="epochs without a better validation recall@20 "
                      "before a neural row stops")
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--learning_rate", type=float, default=0.003)
  parser.add_argument("--embedding_dim", type=int, default=32)
  parser.add_argument("--temperature", type=float, default=0.05)
  parser.add_argument("--num_preferences", type=int, default=4)
  parser.add_argument("--matching", default="softmax",
                      choices=("softmax", "sinkhorn"))
  for field, flag in TUNED_FIELDS.items():
    parser.add_argument(f"--{flag}", nargs="+",
                        type=float if field in ("learning_rate",
                                                "temperature") else int,
                        help=f"GMN rows: {field} values tuned over on "
                        "validation, one field at a time, the first value "
                        "the start (unset: the single value above; "
                        "propagation_layers defaults to "
                        f"{gmn.GmnConfig.propagation_layers})")
  # A string, not a Path: the arguments are written to the results JSON.
  parser.add_argument("--baselines_from", nargs="+", default=[],
                      help="gmn_*.json files of earlier runs on the same "
                      "dataset and split: each file's rows that this run and "
                      "the files before it do not make join this run's table "
                      "and verdict (one dataset only)")
  parser.add_argument("--tag", default="",
                      help="suffix of the results file: gmn_<label>_<tag>.json")
  return parser.parse_args(argv)


def directions(args) -> dict[str, str]:
  """Label -> dataset name of every run the arguments ask for."""
  runs = {}
  for name in args.datasets:
    if name == DATASET:
      domains = (sorted(VIDEO_DOMAINS) if args.video_domain == "both"
                 else [args.video_domain])
      runs.update({domain: VIDEO_DOMAINS[domain] for domain in domains})
    else:
      runs[common.dataset_label(name, args)] = name
  return runs


def main(argv: Sequence[str] | None = None) -> dict:
  args = parse_args(argv)
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  start = time.time()
  results = {}
  runs = directions(args)
  if args.baselines_from and len(runs) > 1:
    raise SystemExit("--baselines_from takes one dataset and direction")
  for label, dataset_name in runs.items():
    results[label] = run_dataset(args, label, dataset_name)
    join_rows_from(results[label], args.baselines_from)
    markdown = report(label, results[label])
    print(f"\n{markdown}\n", flush=True)
    suffix = f"_{args.tag}" if args.tag else ""
    common.write_results(
        common.RESULTS_DIR / f"gmn_{label}{suffix}.json",
        {**results[label], "table": markdown, "args": vars(args),
         "command": common.command("benchmarks.gmn", argv),
         "machine": common.machine(), "wall_seconds": time.time() - start})
  print(summary(results), flush=True)
  return results


if __name__ == "__main__":
  main()
