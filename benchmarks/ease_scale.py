"""EASE^R from thousands to a million items: exact against its approximation.

`models.item_item.ease.fit_ease` fits exactly (dense float32 Cholesky) while its
memory fits the budget and otherwise regresses each column on its `support`
most co-occurring items (`solver="sparse_approx"`). This benchmark fits
each point in a child process of its own (`child_process.run_child`: wall time
and the peak resident memory of the child's tree, sampled from outside; the
child also reports its fit's seconds and its own peak RSS right after the
fit) and records:

* quality, on real data only, where exact and approximate both run:
  Amazon Grocery (`classical.splits`' test split: each user's newest item
  held out, leave-last-out by time) and the two Amazon video/game domains
  merged into one catalogue (item ids prefixed by domain, user ids global;
  the files have no time, so one random positive per user, seed 0, is held
  out); Recall@10/50 and NDCG@10 over the full catalogue, history excluded
  (`classical.Split.full_ranking`), λ fixed for every EASE^R point, beside
  item-kNN;
* scale, on synthetic logs (`data.synthetic.generate_log` with `n_items`)
  of `--interactions` rows: fit seconds and peak RSS at each catalogue size.

    python -m benchmarks.ease_scale --quality amazon-grocery video-games \
        --scale 25000 100000 1000000

It writes `benchmarks/results/ease_scale.json` and prints a table with the
approximation's ratio to the exact fit at the same point.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from benchmarks import child_process
from benchmarks import classical
from benchmarks import common
from data import synthetic
from models.item_item import ease
from models.item_item import item_knn
from models.item_item import neighbours as item_neighbours
from offline_eval import datasets

_RESULTS = common.RESULTS_DIR / "ease_scale.json"
_VIDEO_GAMES = "video-games"
_VIDEO_GAMES_FILES = ("game_video/new_reindex.txt", "video_game/new_reindex.txt")
_QUALITY_METRICS = ("recall@10", "recall@50", "ndcg@10")


def video_games_split(root: pathlib.Path, seed: int = 0
                      ) -> tuple[classical.Split, int]:
  """The two video/game domains as one catalogue, one positive held out.

  Args:
    root: the folder holding both domains' `new_reindex.txt`.
    seed: picks each user's held-out positive.

  Returns:
    The split (users with at least two positives) and the item count,
    index 0 left free as padding.
  """
  frames = []
  for path in _VIDEO_GAMES_FILES:
    frame = pd.read_csv(root / path, sep="\t", header=None,
                        names=["user", "item", "label"])
    frame = frame[frame["label"] > 0]
    frame["item"] = path.split("/")[0] + ":" + frame["item"].astype(str)
    frames.append(frame)
  frame = pd.concat(frames, ignore_index=True).drop_duplicates(
      ["user", "item"])
  items, item_codes = np.unique(frame["item"], return_inverse=True)
  frame = frame.assign(item=item_codes + 1)
  rng = np.random.default_rng(seed)
  histories, targets = [], []
  for _, user_items in frame.groupby("user", sort=True)["item"]:
    user_items = user_items.to_numpy()
    if len(user_items) < 2:
      continue
    held_out = rng.integers(len(user_items))
    targets.append(user_items[held_out])
    histories.append(np.delete(user_items, held_out))
  return classical.Split(histories, np.array(targets)), len(items) + 1


def real_split(name: str, data_root: pathlib.Path
               ) -> tuple[classical.Split, int]:
  """A quality dataset's test split and item count (padding included)."""
  if name == _VIDEO_GAMES:
    return video_games_split(data_root / "amazon-video-games")
  dataset = datasets.load_sequences(name, str(data_root))
  return classical.splits(dataset)["test"], dataset.num_items


def synthetic_interactions(n_items: int, n_interactions: int,
                           seed: int = 0) -> sparse.csr_matrix:
  """Binary X of a synthetic log of `n_interactions` rows, `n_items` items
  (with Zipf-like popularity some have no row)."""
  log = synthetic.generate_log(n_interactions, seed=seed, n_items=n_items)
  items = pd.Index(log.items["item_id"].astype(str))
  interactions = log.interactions
  return item_neighbours.interaction_matrix(
      pd.factorize(interactions["user_id"])[0],
      items.get_indexer(interactions["item_id"].astype(str)), len(items))


def fit_point(point: dict) -> dict:
  """Fits one point in this process: its seconds, peak RSS, quality."""
  if point["data"] == "synthetic":
    interactions = synthetic_interactions(point["items"],
                                          point["interactions"])
    split = None
  else:
    split, num_items = real_split(point["data"], pathlib.Path(point["root"]))
    interactions = split.interactions(num_items)
  if point["model"] == "item_knn":
    fit, config = item_knn.fit_item_knn, item_knn.ItemKnnConfig(
        neighbours=point["neighbours"], shrinkage=point["shrinkage"])
  else:
    fit, config = ease.fit_ease, ease.EaseConfig(
        l2=point["l2"], neighbours=point["neighbours"],
        solver=point["solver"], support=point["support"])
  started = time.perf_counter()
  neighbours = fit(interactions, config)
  result = {"fit_s": round(time.perf_counter() - started, 2),
            "fit_peak_rss_mib": round(common.peak_rss_mib(), 1),
            "users": interactions.shape[0],
            "items": interactions.shape[1] - (split is not None),
            "positives": int(interactions.nnz)}
  if split is not None:
    metrics = split.full_ranking(
        lambda rows: neighbours.score(interactions[rows]),
        interactions.shape[1])
    result.update({name: round(metrics[name], 4)
                   for name in _QUALITY_METRICS})
  return result


def run_point(point: dict, max_rss_gib: float, timeout_s: float) -> dict:
  """Runs `fit_point` in a child process, watched from outside."""
  with tempfile.TemporaryDirectory() as scratch:
    output = pathlib.Path(scratch) / "point.json"
    child = child_process.run_child(
        [sys.executable, "-m", "benchmarks.ease_scale", "--point",
         json.dumps(point), "--point_output", str(output)],
        pathlib.Path(scratch) / "log.txt", max_rss_gib * 2**30, timeout_s)
    measured = json.loads(output.read_text()) if output.is_file() else {}
  row = {**point, **measured, "status": child.status,
         "wall_s": child.wall_s, "peak_rss_mib": child.peak_rss_mib,
         "load_average": child.load_average}
  if child.status != "ok":
    row["output_tail"] = child.output_tail[-1500:]
  common.log(f"{point}: {child.status}, fit {measured.get('fit_s', '-')} s, "
             f"peak RSS {child.peak_rss_mib:,.0f} MiB")
  return row


def points(args: argparse.Namespace) -> list[dict]:
  """Every point the flags ask for, quality first, then scale."""
  ease_point = {"model": "ease", "l2": args.l2, "neighbours": args.neighbours}
  rows = []
  for name in args.quality:
    base = {"data": name, "root": str(args.data_root)}
    rows.append({**base, **ease_point, "solver": "exact",
                 "support": 0})
    rows += [{**base, **ease_point, "solver": "sparse_approx",
              "support": support} for support in args.supports]
    rows.append({**base, "model": "item_knn",
                 "neighbours": args.knn_neighbours,
                 "shrinkage": args.knn_shrinkage})
  for n_items in args.scale:
    base = {"data": "synthetic", "items": n_items,
            "interactions": args.interactions}
    if n_items <= args.exact_up_to:
      rows.append({**base, **ease_point, "solver": "exact", "support": 0})
    rows += [{**base, **ease_point, "solver": "sparse_approx",
              "support": support} for support in args.supports]
  return rows


def with_ratios(rows: list[dict]) -> list[dict]:
  """Each approximation's fit seconds and peak RSS over the exact fit's at
  the same data point, where there is one."""
  exact = {(row["data"], row.get("items")): row for row in rows
           if row.get("solver") == "exact" and row["status"] == "ok"}
  for row in rows:
    reference = exact.get((row["data"], row.get("items")))
    if (row.get("solver") == "sparse_approx" and reference
        and row["status"] == "ok"):
      row["fit_s_over_exact"] = round(row["fit_s"] / reference["fit_s"], 3)
      row["peak_rss_over_exact"] = round(
          row["peak_rss_mib"] / reference["peak_rss_mib"], 3)
  return rows


def table(rows: Sequence[dict]) -> str:
  headers = ["data", "items", "model", "solver", "support", "status",
             "fit s", "peak RSS MiB", *_QUALITY_METRICS, "fit s / exact",
             "RSS / exact"]
  cells = [[row["data"], row.get("items", "-"), row["model"],
            row.get("solver", "-"), row.get("support", "-"), row["status"],
            row.get("fit_s", "-"), row["peak_rss_mib"],
            *[row.get(name, "-") for name in _QUALITY_METRICS],
            row.get("fit_s_over_exact", "-"),
            row.get("peak_rss_over_exact", "-")] for row in rows]
  return common.aligned_table(headers, cells)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quality", nargs="*", default=["amazon-grocery",
                                                        _VIDEO_GAMES],
                      help=f"real datasets: built-in names or {_VIDEO_GAMES}")
  parser.add_argument("--scale", nargs="*", type=int,
                      default=[25_000, 100_000, 1_000_000],
                      help="synthetic catalogue sizes")
  parser.add_argument("--interactions", type=int, default=1_000_000,
                      help="rows of each synthetic log")
  parser.add_argument("--exact_up_to", type=int, default=25_000,
                      help="largest synthetic catalogue also fitted exactly")
  parser.add_argument("--supports", nargs="+", type=int, default=[64, 256])
  parser.add_argument("--l2", type=float, default=500.0,
                      help="λ of every EASE^R fit (classical.json's choice "
                      "on amazon-grocery)")
  parser.add_argument("--neighbours", type=int,
                      default=ease.EaseConfig.neighbours)
  parser.add_argument("--knn_neighbours", type=int, default=200)
  parser.add_argument("--knn_shrinkage", type=float, default=100.0)
  parser.add_argument("--data_root", type=pathlib.Path,
                      default=pathlib.Path(os.environ.get(
                          "VREC_DATA_ROOT", "/work/shared/data")))
  parser.add_argument("--max_rss_gib", type=float, default=12.0)
  parser.add_argument("--timeout_s", type=float, default=1800.0,
                      help="per point")
  parser.add_argument("--output", type=pathlib.Path, default=_RESULTS)
  parser.add_argument("--point", help=argparse.SUPPRESS)
  parser.add_argument("--point_output", help=argparse.SUPPRESS)
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict | None:
  args = parse_args(argv)
  if args.point:
    pathlib.Path(args.point_output).write_text(
        json.dumps(fit_point(json.loads(args.point))))
    return None
  started = time.time()
  rows = with_ratios([run_point(point, args.max_rss_gib, args.timeout_s)
                      for point in points(args)])
  print(table(rows), flush=True)
  payload = {"command": common.command("benchmarks.ease_scale", argv),
             "args": {k: str(v) if isinstance(v, pathlib.Path) else v
                      for k, v in vars(args).items()},
             "machine": common.machine(),
             "wall_s": round(time.time() - started, 1), "points": rows}
  common.write_results(args.output, payload)
  return payload


if __name__ == "__main__":
  main()
