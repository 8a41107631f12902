"""Benchmarks the closed-form families `ease` and `item_knn` against most-popular.

For each dataset (`offline_eval.datasets`, leave-one-out by time), every
hyperparameter setting of a small grid is fitted on the train sequences and
scored on the validation items (history: the train sequence); the best one
by validation Recall@50 is refitted on train + validation and scored on the
test items (history: train + validation), by the product's own fits
(`models.item_item.ease.fit_ease`, `models.item_item.item_knn.fit_item_knn`) and the benchmarks'
full-ranking scorer (`offline_eval.protocols.full_ranking`, known items
excluded). Also reported: EASE^R at its best λ with every weight kept (no
top-k sparsification), to show what the sparse form costs, and most-popular.
Fit time and the fit's peak traced memory (numpy allocations, by
`tracemalloc`) are those of the final refit; the process's peak RSS is
written once per dataset.

    python -m benchmarks.classical
    python -m benchmarks.classical --dataset contract --dataset-dir DIR

Writes `benchmarks/results/classical.json` and prints one table per dataset.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
import tracemalloc
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from benchmarks import common
from models.item_item import ease
from models.item_item import item_knn
from models.item_item import neighbours as item_neighbours
from offline_eval import datasets
from offline_eval import protocols
from offline_eval import reporting

_RESULTS = common.RESULTS_DIR / "classical.json"
_KS = (10, 50, 100)
_SELECTION_METRIC = "recall@50"
_REPORTED = ("recall@10", "recall@50", "recall@100", "ndcg@10")


@dataclasses.dataclass(frozen=True)
class Split:
  """One evaluation: who saw what before, and what they chose next."""
  histories: list[np.ndarray]
  targets: np.ndarray

  def interactions(self, num_items: int) -> sparse.csr_matrix:
    users = np.repeat(np.arange(len(self.histories)),
                      [len(history) for history in self.histories])
    return item_neighbours.interaction_matrix(
        users, np.concatenate(self.histories), num_items)

  def full_ranking(self, scores: Callable[[np.ndarray], np.ndarray],
                   num_items: int) -> dict:
    """Full-ranking metrics among the items the histories hold (padding is
    never one), as the pipeline's `evaluate` ranks; the history excluded."""
    return protocols.full_ranking(
        scores, np.arange(len(self.targets)),
        [self.targets[u:u + 1] for u in range(len(self.targets))],
        self.histories, _KS,
        catalogue=protocols.items_with_positives(self.histories, num_items))


def splits(dataset: datasets.SequenceDataset) -> dict[str, Split]:
  """`valid`: train -> validation item; `test`: train + validation -> test."""
  return {
      "valid": Split(list(dataset.train_sequences), dataset.valid_items),
      "test": Split([np.append(sequence, valid) for sequence, valid in
                     zip(dataset.train_sequences, dataset.valid_items)],
                    dataset.test_items),
  }


def evaluate_fit(fit, config, split: Split, num_items: int) -> dict:
  """Fits on `split`'s histories and scores its targets.

  Returns:
    The metrics, with the fit's seconds and peak traced MiB.
  """
  interactions = split.interactions(num_items)
  tracemalloc.start()
  started = time.perf_counter()
  neighbours = fit(interactions, config)
  fit_s = time.perf_counter() - started
  peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
  tracemalloc.stop()
  metrics = split.full_ranking(
      lambda users: neighbours.score(interactions[users]), num_items)
  return {**metrics, "fit_s": round(fit_s, 3),
          "fit_peak_mib": round(peak_mib, 1)}


def tune_and_test(label: str, fit, configs: Sequence, data: dict[str, Split],
                  num_items: int) -> dict:
  """Picks the config with the best validation metric, then tests it."""
  validation = []
  for config in configs:
    metrics = evaluate_fit(fit, config, data["valid"], num_items)
    common.log(f"  {label} {config}: valid {_SELECTION_METRIC} "
               f"{metrics[_SELECTION_METRIC]:.4f} ({metrics['fit_s']:.1f} s)")
    validation.append({"hparams": dataclasses.asdict(config), **metrics})
  best = configs[int(np.argmax([row[_SELECTION_METRIC]
                                for row in validation]))]
  test = evaluate_fit(fit, best, data["test"], num_items)
  common.log(f"  {label} best {best}: test {_SELECTION_METRIC} "
             f"{test[_SELECTION_METRIC]:.4f} ({test['fit_s']:.1f} s)")
  return {"hparams": dataclasses.asdict(best), "validation": validation,
          "test": test}


def most_popular(split: Split, num_items: int) -> dict:
  popularity = protocols.popularity_scores(np.concatenate(split.histories),
                                           num_items)
  return split.full_ranking(
      lambda users: np.tile(popularity, [len(users), 1]), num_items)


def run_dataset(name: str, args: argparse.Namespace) -> dict:
  label = common.dataset_label(name, args)
  common.log(f"loading {label}")
  dataset = common.load_sequences(name, args)
  num_items = dataset.num_items
  common.log(f"{dataset.num_users} users, {num_items - 1} items")
  data = splits(dataset)
  results = {"users": dataset.num_users, "items": num_items - 1,
             "most_popular": {"test": most_popular(data["test"], num_items)}}
  results["ease"] = tune_and_test(
      "ease", ease.fit_ease,
      [ease.EaseConfig(l2=l2, neighbours=args.ease_neighbours)
       for l2 in args.ease_l2], data, num_items)
  dense = ease.EaseConfig(l2=results["ease"]["hparams"]["l2"],
                          neighbours=num_items)
  results["ease_all_weights"] = {
      "hparams": dataclasses.asdict(dense),
      "test": evaluate_fit(ease.fit_ease, dense, data["test"], num_items)}
  results["item_knn"] = tune_and_test(
      "item_knn", item_knn.fit_item_knn,
      [item_knn.ItemKnnConfig(neighbours=k, shrinkage=shrinkage)
       for k in args.knn_neighbours for shrinkage in args.knn_shrinkage],
      data, num_items)
  results["peak_rss_mib"] = round(common.peak_rss_mib(), 1)
  return results


def table(label: str, results: dict) -> str:
  """The test metrics of every model, with fit time and memory."""
  rows = []
  for model in ("most_popular", "item_knn", "ease", "ease_all_weights"):
    test = results[model]["test"]
    hparams = results[model].get("hparams", {})
    rows.append([model, ", ".join(f"{k}={v}" for k, v in hparams.items()
                                  if k != "memory_budget_gb")] +
                [round(test[name], 4) for name in _REPORTED] +
                [test.get("fit_s", "-"), test.get("fit_peak_mib", "-")])
  headers = ["model", "hparams", *_REPORTED, "fit s", "fit peak MiB"]
  return (f"### {label} ({results['users']} users, {results['items']} items; "
          f"peak RSS {results['peak_rss_mib']:.0f} MiB)\n\n" +
          reporting.markdown_table(headers, rows))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_dataset_arguments(parser, datasets.DATASETS,
                               ["movielens-100k", "amazon-grocery"],
                               multiple=True)
  parser.add_argument("--ease_l2", nargs="+", type=float,
                      default=[10.0, 50.0, 200.0, 500.0, 1500.0],
                      help="EASE^R λ grid, tuned on validation")
  parser.add_argument("--ease_neighbours", type=int,
                      default=ease.EaseConfig.neighbours)
  parser.add_argument("--knn_neighbours", nargs="+", type=int,
                      default=[20, 50, 200], help="item-kNN k grid")
  parser.add_argument("--knn_shrinkage", nargs="+", type=float,
                      default=[10.0, 100.0, 500.0],
                      help="item-kNN shrinkage grid")
  parser.add_argument("--output", type=pathlib.Path, default=_RESULTS)
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
  common.run_datasets("benchmarks.classical", argv, parse_args(argv),
                      run_dataset, table)


if __name__ == "__main__":
  main()
