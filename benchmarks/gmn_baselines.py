"""The GMN benchmark's baseline rows: MostPop, the closed-form item-item
fits and LightGCN, scored like the GMN variants (`benchmarks.gmn_setup`).

Every row returns `(metrics by slice, timing)`; the timing holds
`train_seconds` and `seconds_to_quality` (until 99% of the best validation
score) like the neural rows'. A closed form reaches its quality in one fit:
both are the chosen setting's refit, and the search over settings is
`tuning_seconds`.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Sequence

import numpy as np
import tensorflow as tf

from benchmarks import gmn_setup
from data import dual_graph
from data import features
from models import training
from models.item_item import fitters as item_item_fitters
from models.retrieval import lightgcn as lightgcn_lib
from models.retrieval import two_tower
from offline_eval import item_item
from offline_eval import protocols

VIDEOS_ONLY = (dual_graph.VIDEO,)
BOTH_SIDES = (dual_graph.VIDEO, dual_graph.ITEM)
# Node types each closed-form row fits and reads, by row suffix.
CLASSICAL_SIDES = {"": VIDEOS_ONLY, "_both_sides": BOTH_SIDES}
CLASSICAL = {f"{family}{suffix}": (family, sides)
             for family in item_item_fitters.FITTERS
             for suffix, sides in CLASSICAL_SIDES.items()}
DEFAULT_CLASSICAL = ("ease", "item_knn", "item_knn_both_sides")
# LightGCN's graph per row: user-video edges, or user-video and user-item
# edges. Either way it trains on and ranks videos only.
LIGHTGCN = {"lightgcn_videos_only": VIDEOS_ONLY, "lightgcn_joint": BOTH_SIDES}
# Users whose train histories one serving call reads: its distinct-entry
# mask is users x length², 64M entries at the longest history seen (about
# 1,000 nodes on amazon-books-movies).
_USERS_PER_CALL = 64


def columns(bench: gmn_setup.Benchmark, sides: Sequence[str]) -> int:
  """The node index space a row over `sides` needs: videos take indices
  `1..num_videos` and items the ones after, so a videos-only row has no
  item columns (EASE^R's inverse is columns²)."""
  return (bench.vocabulary.size if dual_graph.ITEM in sides
          else bench.num_candidates)


def popularity(bench: gmn_setup.Benchmark) -> tuple[dict, dict]:
  """MostPop: every user scores videos by their train count."""
  started = time.perf_counter()
  _, videos = bench.edges(bench.train, VIDEOS_ONLY)
  counts = protocols.popularity_scores(videos, bench.num_candidates)
  seconds = round(time.perf_counter() - started, 1)
  metrics = gmn_setup.score(
      lambda users: np.tile(counts, (len(users), 1)), bench.test)
  return metrics, {"train_seconds": seconds, "seconds_to_quality": seconds}


def classical(bench: gmn_setup.Benchmark, row: str) -> tuple[dict, dict]:
  """Tunes, refits and scores one closed-form row (a key of `CLASSICAL`).

  Each setting is fitted on `fit` and scored on the validation videos; the
  chosen one is refitted on `train`. A user is scored by their whole train
  row (not the bounded neighbour lists) and only videos are ranked.

  Returns:
    The row's metrics, and its timing with the chosen setting and every
    setting's validation metric.
  """
  family, sides = CLASSICAL[row]
  width = columns(bench, sides)

  def histories(frame):
    """Every user's nodes of `sides` in `frame`, as X."""
    return item_item.history_matrix(
        bench.nodes_per_user(frame, sides, np.arange(len(bench.user_ids))),
        width)

  fit_histories = histories(bench.fit)

  def validate(neighbours) -> float:
    scorer = item_item.ItemItemScorer(neighbours, fit_histories)
    return gmn_setup.validation_score(
        lambda users: scorer.score_all(bench.validation_set.rows[users])[
            :, :bench.num_candidates], bench)

  started = time.perf_counter()
  tuned = item_item.tune(family, fit_histories, validate)
  tuning_seconds = time.perf_counter() - started
  started = time.perf_counter()
  train_histories = histories(bench.train)
  scorer = item_item.ItemItemScorer(
      item_item_fitters.FITTERS[family].fit(train_histories, tuned.config),
      train_histories)
  seconds = round(time.perf_counter() - started, 1)
  timing = {"train_seconds": seconds, "seconds_to_quality": seconds,
            "tuning_seconds": round(tuning_seconds, 1),
            "hparams": {name: getattr(tuned.config, name)
                        for name in tuned.validation[0]["hparams"]},
            "validation": tuned.validation}
  metrics = gmn_setup.score(
      lambda users: scorer.score_all(bench.test.rows[users])[
          :, :bench.num_candidates], bench.test)
  return metrics, timing


@dataclasses.dataclass(frozen=True)
class LightGcnGrid:
  """The settings LightGCN is tuned over on validation (every combination).

  Attributes:
    num_layers: K values.
    embedding_dims: embedding sizes.
    embedding_l2: L2 penalties on the batch's layer-0 embeddings.
  """
  num_layers: Sequence[int] = (1, 2, 3)
  embedding_dims: Sequence[int] = (32, 64)
  embedding_l2: Sequence[float] = (1e-5, 1e-4)

  def configs(self, base: lightgcn_lib.LightGcnConfig
              ) -> list[lightgcn_lib.LightGcnConfig]:
    return [dataclasses.replace(base, num_layers=layers, embedding_dim=dim,
                                embedding_l2=l2)
            for layers, dim, l2 in itertools.product(
                self.num_layers, self.embedding_dims, self.embedding_l2)]


def lightgcn(bench: gmn_setup.Benchmark, row: str,
             config: lightgcn_lib.LightGcnConfig, seed: int
             ) -> tuple[dict, dict]:
  """Trains one LightGCN row (a key of `LIGHTGCN`) with one seed.

  The graph is the `fit` edges of the row's sides; the positives are the
  `fit` videos, in-batch softmax with the logQ correction, stopped on the
  validation videos (scored from the users' graph rows). Test users are
  scored as the product serves them: from their whole train history on the
  row's sides (`LightGcnModel.query_tower`), which adds the validation
  videos to their graph row.

  Returns:
    The metrics by slice, and the timing.
  """
  sides = LIGHTGCN[row]
  tf.keras.utils.set_random_seed(seed)
  width = columns(bench, sides)
  _, fit_videos = bench.edges(bench.fit, VIDEOS_ONLY)
  counts = np.bincount(fit_videos, minlength=width)
  model = lightgcn_lib.build_lightgcn(
      two_tower.VocabularySizes(users=len(bench.user_ids), items=width,
                                title_tokens=0, categories=0),
      {features.ITEM_INDEX: np.arange(width, dtype=np.int64)},
      counts / counts.sum(), config, edges=bench.edges(bench.fit, sides))
  users, videos = bench.edges(bench.fit, VIDEOS_ONLY)
  batches = training.shuffled_batches(
      {features.USER_INDEX: users, features.ITEM_INDEX: videos},
      config.batch_size, seed)

  def candidates() -> np.ndarray:
    return model.candidate_tower({features.ITEM_INDEX: tf.range(
        bench.num_candidates, dtype=tf.int64)}).numpy()

  def validate() -> float:
    queries = model.graph_user_vectors(bench.validation_set.rows).numpy()
    return gmn_setup.validation_score(
        gmn_setup.embedding_scores(queries, candidates()), bench)

  timing = gmn_setup.fit_validated(model, batches, config, validate, row)
  with model.embeddings.propagated():
    queries = _served_user_vectors(model, bench, sides)
    metrics = gmn_setup.score(
        gmn_setup.embedding_scores(queries, candidates()), bench.test)
  return metrics, timing


def _served_user_vectors(model: lightgcn_lib.LightGcnModel,
                         bench: gmn_setup.Benchmark,
                         sides: Sequence[str]) -> np.ndarray:
  """`[test users, dim]` the test users' vectors from their train nodes."""
  rows = bench.test.rows
  histories = bench.nodes_per_user(bench.train, sides, rows)
  vectors = np.zeros((len(rows), model.config.embedding_dim), np.float32)
  # Users of similar history length share a call, so little of it is
  # padding.
  order = np.argsort([len(history) for history in histories], kind="stable")
  for start in range(0, len(order), _USERS_PER_CALL):
    calls = order[start:start + _USERS_PER_CALL]
    padded = np.zeros((len(calls), max(1, len(histories[calls[-1]]))),
                      np.int64)
    for line, user in enumerate(calls):
      padded[line, :len(histories[user])] = histories[user]
    vectors[calls] = model.query_tower(
        {features.USER_INDEX: tf.constant(rows[calls]),
         features.HISTORY_ITEM_INDICES: tf.constant(padded)}).numpy()
  return vectors


def tune_lightgcn(bench: gmn_setup.Benchmark, row: str,
                  base: lightgcn_lib.LightGcnConfig, grid: LightGcnGrid,
                  seed: int) -> tuple[lightgcn_lib.LightGcnConfig, tuple,
                                      list[dict]]:
  """Trains every setting of `grid` with `seed`; keeps the best on
  validation.

  Returns:
    The chosen config, its run (`lightgcn`'s output, which stands for
    `seed`) and every setting's validation score and timing.
  """
  best, searched = None, []
  for config in grid.configs(base):
    hparams = {"num_layers": config.num_layers,
               "embedding_dim": config.embedding_dim,
               "embedding_l2": config.embedding_l2}
    print(f"    {row} {hparams}", flush=True)
    run = lightgcn(bench, row, config, seed)
    searched.append({"hparams": hparams, **run[1]})
    if best is None or run[1]["validation"] > best[1][1]["validation"]:
      best = (config, run)
  return best[0], best[1], searched
