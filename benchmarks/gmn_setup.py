"""What every row of the GMN benchmark shares: the split, the ranking sets,
the scoring and the validated fit of a neural row.

The data has no timestamps, so the test and validation videos are seeded
random hold-outs (`dual_graph.split_user_videos`): test videos from the log,
validation videos from train the same way. Neural rows train on `fit` (train
without the validation videos) and stop on the validation videos; the
closed-form rows tune on `fit` and refit on `train`. Every row is scored on
the same test users by full ranking over the video catalogue, the user's
train videos excluded, per slice of users (`dual_graph.user_slices`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from data import dual_graph
from models import early_stopping
from models import training
from offline_eval import protocols

KS = (20, 50)
METRICS = ("recall@20", "recall@50", "ndcg@20")
# What the neural rows stop on and every tuned row is chosen by.
SELECTION_METRIC = "recall@20"
# Time to quality: the seconds until validation first reaches this share of
# its best.
QUALITY_FRACTION = 0.99
SPLIT_NOTE = "seeded random hold-out (the data has no timestamps)"

# `(users, nodes) -> [n, videos + 1]` scores; column 0 is padding.
ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class RankingSet:
  """Users ranked over the videos.

  Attributes:
    rows: `[U]` the users' rows of `Benchmark.user_ids`.
    targets: per user, the held-out video indices.
    exclude: per user, the indices never ranked: the videos the model
      could read, and 0 (padding).
    slices: slice name -> `[U]` bool (`dual_graph.user_slices`).
  """
  rows: np.ndarray
  targets: list
  exclude: list
  slices: dict


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """Everything a row needs, shared by all rows and seeds.

  Attributes:
    vocabulary: videos `1..num_videos`, then items.
    user_ids: every user of the log; a user's row is their position.
    train: every train edge (test videos held out).
    fit: `train` without the validation videos.
    validation: the validation videos, rows of `train`.
    graph: the neighbour lists of `train`, rows `user_ids` (test queries).
    fit_graph: the neighbour lists of `fit`, same rows (training and
      validation queries).
    test: the test users' ranking set, their `train` videos excluded.
    validation_set: the validation users', their `fit` videos excluded.
  """
  vocabulary: dual_graph.NodeVocabulary
  user_ids: np.ndarray
  train: pd.DataFrame
  fit: pd.DataFrame
  validation: pd.DataFrame
  graph: dual_graph.DualGraph
  fit_graph: dual_graph.DualGraph
  test: RankingSet
  validation_set: RankingSet

  @property
  def num_candidates(self) -> int:
    """Score columns: the videos and padding."""
    return self.vocabulary.num_videos + 1

  def edges(self, frame: pd.DataFrame, sides: Sequence[str]
            ) -> tuple[np.ndarray, np.ndarray]:
    """`(user rows, node indices)` of the rows of `frame` on `sides`."""
    frame = frame[frame["item_type"].isin(sides)]
    return (self.graph.user_rows(frame["user_id"]),
            self.vocabulary.lookup(frame["item_id"]))

  def nodes_per_user(self, frame: pd.DataFrame, sides: Sequence[str],
                     rows: np.ndarray) -> list:
    """Node indices of each user of `rows` in `frame`, on `sides`."""
    frame = frame[frame["item_type"].isin(sides)]
    return indices_per_user(frame, self.user_ids[rows], self.vocabulary)


def split(log: pd.DataFrame, fraction: float, seed: int, shared_only: bool
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
  """`(train, test videos, validation videos)`: validation carved from train
  as the test videos were from the log (same fraction and seed)."""
  train, heldout = dual_graph.split_user_videos(log, fraction, seed,
                                                shared_only)
  _, validation = dual_graph.split_user_videos(train, fraction, seed,
                                               shared_only)
  return train, heldout, validation


def build(log: pd.DataFrame, train: pd.DataFrame, heldout: pd.DataFrame,
          validation: pd.DataFrame, config: dual_graph.DualGraphConfig
          ) -> Benchmark:
  """The dual graphs and ranking sets of one split.

  Args:
    log: every interaction (the node vocabulary and the users).
    train: the rows models train on.
    heldout: the test videos, none of them in `train`.
    validation: the validation videos, rows of `train`.
    config: the neighbour lists' caps and order.
  """
  vocabulary = dual_graph.node_vocabulary(log)
  user_ids = np.sort(log["user_id"].unique())
  fit = train.drop(validation.index)
  graph = dual_graph.build_dual_graph(train, vocabulary, config, user_ids)
  fit_graph = dual_graph.build_dual_graph(fit, vocabulary, config, user_ids)
  bench = Benchmark(vocabulary=vocabulary, user_ids=user_ids, train=train,
                    fit=fit, validation=validation, graph=graph,
                    fit_graph=fit_graph, test=None, validation_set=None)
  return dataclasses.replace(
      bench, test=_ranking_set(bench, heldout, train),
      validation_set=_ranking_set(bench, validation, fit))


def _ranking_set(bench: Benchmark, heldout: pd.DataFrame,
                 seen: pd.DataFrame) -> RankingSet:
  """The users of `heldout`, their `seen` videos excluded, sliced by
  `seen`."""
  users = np.sort(heldout["user_id"].unique())
  rows = bench.graph.user_rows(users)
  seen_videos = bench.nodes_per_user(seen, (dual_graph.VIDEO,), rows)
  return RankingSet(
      rows=rows,
      targets=indices_per_user(heldout, users, bench.vocabulary),
      exclude=[np.append(videos, 0) for videos in seen_videos],
      slices=dual_graph.user_slices(seen, users))


def indices_per_user(frame: pd.DataFrame, users: np.ndarray,
                     vocabulary: dual_graph.NodeVocabulary) -> list:
  """Node indices of each user's rows of `frame`, in `users` order."""
  rows = pd.Index(users).get_indexer(frame["user_id"])
  indices = vocabulary.lookup(frame["item_id"])[rows >= 0]
  rows = rows[rows >= 0]
  order = np.argsort(rows, kind="stable")
  boundaries = np.cumsum(np.bincount(rows, minlength=len(users)))[:-1]
  return np.split(indices[order], boundaries)


def describe(bench: Benchmark, label: str) -> str:
  """One line of the split's sizes."""
  videos = (bench.train["item_type"] == dual_graph.VIDEO).sum()
  return (f"[{label}] videos={bench.vocabulary.num_videos} "
          f"items={len(bench.vocabulary.node_ids) - bench.vocabulary.num_videos}"
          f" users={len(bench.user_ids)} train video edges={videos} "
          f"train item edges={len(bench.train) - videos} "
          f"test users={len(bench.test.rows)} "
          f"test videos={sum(map(len, bench.test.targets))} "
          f"validation videos={len(bench.validation)} ({SPLIT_NOTE})")


def score(score_fn: ScoreFn, ranking: RankingSet
          ) -> dict[str, dict[str, float]]:
  """Slice -> metric -> mean over the slice's users of `ranking`.

  Args:
    score_fn: positions in `ranking.rows` -> their `[n, videos + 1]` scores.
    ranking: the users, targets, exclusions and slices.
  """
  per_user = protocols.full_ranking_per_user(
      score_fn, np.arange(len(ranking.rows)), ranking.targets,
      ranking.exclude, ks=KS)
  return protocols.sliced_means({name: per_user[name] for name in METRICS},
                                ranking.slices)


def validation_score(score_fn: ScoreFn, bench: Benchmark) -> float:
  """`SELECTION_METRIC` over every validation user."""
  return score(score_fn, bench.validation_set)[dual_graph.SLICE_ALL][
      SELECTION_METRIC]


def embedding_scores(queries: np.ndarray, candidates: np.ndarray) -> ScoreFn:
  """Dot products of `[U, d]` query and `[videos + 1, d]` video vectors."""
  return lambda users: queries[users] @ candidates.T


def fit_validated(model: tf.keras.Model, batches: tf.data.Dataset, config,
                  validate: Callable[[], float], family: str
                  ) -> dict[str, float]:
  """Trains a neural row to convergence: early stopping on validation.

  Args:
    model: compiled and trained here; ends with the best epoch's weights.
    batches: one epoch of `fit` batches.
    config: `learning_rate`, `epochs` (the most),
      `early_stopping_patience`, `early_stopping_min_improvement`.
    validate: `() -> SELECTION_METRIC` of the current model on validation.
    family: the row, for the log.

  Returns:
    The timing: `train_seconds` (every epoch trained, validation
    included), `seconds_to_quality` (until validation first reached
    `QUALITY_FRACTION` of its best), the best and last epochs and the best
    validation score.
  """
  started = time.perf_counter()
  best = training.fit_best_epoch(
      model, batches, config.learning_rate, config.epochs,
      lambda epoch, loss: validate(),
      patience=config.early_stopping_patience,
      min_improvement=config.early_stopping_min_improvement)
  curve = early_stopping.curve(family, best, SELECTION_METRIC, config.epochs)
  timing = {"train_seconds": round(time.perf_counter() - started, 1),
            "seconds_to_quality": round(
                curve.seconds_to_reach(QUALITY_FRACTION), 1),
            "best_epoch": best.epoch, "epochs": len(best.scores),
            "validation": best.score}
  print(f"    {family}: best epoch {best.epoch} of {len(best.scores)} "
        f"(validation {SELECTION_METRIC} {best.score:.4f}), "
        f"{timing['train_seconds']:.0f}s, "
        f"{QUALITY_FRACTION:.0%} of best after "
        f"{timing['seconds_to_quality']:.0f}s"
        + ("; the budget ended it" if curve.budget_warning() else ""),
        flush=True)
  return timing


Run = tuple[dict, dict]


def coordinate_search(base, axes: Mapping[str, Sequence],
                      run: Callable[[object], Run], family: str
                      ) -> tuple[object, Run, list[dict]]:
  """Tunes a config on validation one field at a time.

  A full grid over four fields of a GMN fit (minutes each) costs hours on
  two cores; this tries each field's values with the others at their best
  so far, in the order of `axes`, so it costs `1 + sum(len(values) - 1)`
  fits.

  Args:
    base: a dataclass config; each field of `axes` starts at its first value.
    axes: config field -> the values tried.
    run: trains one config with the tuning seed: `(metrics, timing)`, the
      timing holding the best `validation` score.
    family: the row, for the log.

  Returns:
    The chosen config, its run (which stands for the tuning seed) and every
    fit's hyperparameters, validation score and timing, in the order run.
  """
  def fit(config) -> Run:
    hparams = {field: getattr(config, field) for field in axes}
    print(f"    {family} {hparams}", flush=True)
    result = run(config)
    searched.append({"hparams": hparams, **result[1]})
    return result

  searched: list[dict] = []
  best = dataclasses.replace(base, **{field: values[0]
                                      for field, values in axes.items()})
  best_run = fit(best)
  for field, values in axes.items():
    for value in values[1:]:
      candidate = dataclasses.replace(best, **{field: value})
      result = fit(candidate)
      if result[1]["validation"] > best_run[1]["validation"]:
        best, best_run = candidate, result
  return best, best_run, searched
