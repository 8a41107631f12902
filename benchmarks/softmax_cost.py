"""Training step time of the retrieval Trainers' softmaxes against the catalogue.

SASRec's per-sequence Trainer (`models.retrieval.sasrec.SequenceRetrievalModel`)
trains either with the exact softmax over the whole catalogue, whose step
runs the candidate tower over every item and scores
`[positions per batch, items]` logits, or with the sampled one over the
batch's targets and `num_uniform_negatives` uniform draws. This benchmark
times one training step (forward, backward and Adam update; the median of
`--steps` after `--warm-up` unrecorded ones) of each on synthetic catalogues
of growing size, with the default `SasRecConfig` (1,600 positions per batch,
as full windows; `--positions-per-batch` sets another), and the two-tower Trainer's default step (in-batch
negatives of 512 examples, `TwoTowerConfig`'s defaults) beside them. The
exact softmax is timed up to `--exact-max-items`: above, its logits alone
(`positions x items` floats) are more memory than the machine can spare,
and the row says how much. The synthetic catalogue has item ids, random
title tokens and categories, and a Zipf popularity the batches are drawn
from; only the time is measured here, the quality is
`benchmarks.trainer_only`'s on the real datasets.

    python -m benchmarks.softmax_cost \
        --items 5000 20000 50000 100000 300000 1000000 \
        --output benchmarks/results/softmax_cost.json

The sampled SASRec step and the two-tower's are each timed twice: with Adam,
whose sparse update still passes over the whole item table, and with lazy
Adam (`models.lazy_adam`), which the Trainers use above
`two_tower.LAZY_ADAM_MIN_ITEMS` items. The table's ratios are sampled / exact
and lazy / Adam at the same catalogue size, measured in the same run; the
growth columns divide each step by that variant's step at the smallest
catalogue.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from benchmarks import common
from data import features
from models import lazy_adam
from models.retrieval import sasrec
from models.retrieval import two_tower

# The synthetic vocabularies that do not grow with the catalogue.
_USERS = 10_000
_TITLE_TOKENS = 20_000
_CATEGORIES = 64
_FLOAT_BYTES = 4


def synthetic_catalogue(num_items: int, rng: np.random.Generator
                        ) -> tuple[two_tower.VocabularySizes,
                                   dict[str, np.ndarray], np.ndarray]:
  """Vocabulary sizes, candidate features and Zipf train frequencies.

  Item indices are 0 (padding), 1..num_items and num_items + 1 (OOV), as
  the Transform output's item vocabulary.
  """
  num_indices = num_items + 2
  vocab = two_tower.VocabularySizes(users=_USERS, items=num_indices,
                                    title_tokens=_TITLE_TOKENS,
                                    categories=_CATEGORIES)
  catalogue = {
      features.ITEM_INDEX: np.arange(num_indices, dtype=np.int64),
      features.TITLE_TOKEN_INDICES: rng.integers(
          1, _TITLE_TOKENS, (num_indices, features.TITLE_LENGTH)),
      features.CATEGORY_INDICES: rng.integers(
          1, _CATEGORIES, (num_indices, features.CATEGORY_LENGTH)),
  }
  probability = np.zeros(num_indices)
  probability[1:-1] = 1.0 / np.arange(1, num_items + 1)
  return vocab, catalogue, probability / probability.sum()


def _context(rng: np.random.Generator, shape) -> dict[str, np.ndarray]:
  return {features.HOUR_OF_DAY: rng.integers(0, 24, shape),
          features.DAY_OF_WEEK: rng.integers(0, 7, shape),
          features.TIMESTAMP_Z: rng.normal(size=shape).astype(np.float32)}


def sequence_batch(probability: np.ndarray, positions: int,
                   rng: np.random.Generator) -> dict[str, tf.Tensor]:
  """Full windows of popularity-drawn items: `positions` targets in all."""
  shape = (positions // features.HISTORY_LENGTH, features.HISTORY_LENGTH + 1)
  items = rng.choice(len(probability), size=shape, p=probability)
  return {name: tf.constant(values) for name, values in {
      features.HISTORY_ITEM_INDICES: items[:, :-1],
      features.ITEM_INDEX: items[:, 1:],
      **_context(rng, shape[:1] + (features.HISTORY_LENGTH,))}.items()}


def interaction_batch(catalogue: Mapping[str, np.ndarray],
                      probability: np.ndarray, batch_size: int,
                      rng: np.random.Generator) -> dict[str, tf.Tensor]:
  """Per-interaction examples (the two-tower's), items drawn by popularity."""
  items = rng.choice(len(probability), size=batch_size, p=probability)
  history = rng.choice(len(probability), p=probability,
                       size=(batch_size, features.HISTORY_LENGTH))
  return {name: tf.constant(values) for name, values in {
      features.USER_INDEX: rng.integers(1, _USERS, batch_size),
      features.ITEM_INDEX: items,
      features.HISTORY_ITEM_INDICES: history,
      features.TITLE_TOKEN_INDICES: catalogue[
          features.TITLE_TOKEN_INDICES][items],
      features.CATEGORY_INDICES: catalogue[features.CATEGORY_INDICES][items],
      **_context(rng, (batch_size,))}.items()}


def step_seconds(model: tf.keras.Model, learning_rate: float,
                 batch: Mapping[str, tf.Tensor], warm_up: int,
                 steps: int, lazy: bool = False) -> float:
  """Median wall seconds of one training step of `model` on `batch`, with
  lazy Adam or Adam."""
  optimizer = lazy_adam.LazyAdam if lazy else tf.keras.optimizers.Adam
  model.compile(optimizer=optimizer(learning_rate))
  # What `fit` runs per batch (TFRS's `train_step`), without its iterator.
  train_step = tf.function(model.train_step)
  for _ in range(warm_up):  # The first traces the step.
    train_step(batch)
  seconds = []
  for _ in range(steps):
    started = time.perf_counter()
    float(train_step(batch)["loss"])
    seconds.append(time.perf_counter() - started)
  return float(np.median(seconds))


def _timed(build: Callable[[], tf.keras.Model], learning_rate: float,
           batch: Mapping[str, tf.Tensor], args: argparse.Namespace,
           lazy: bool = False) -> float:
  """`step_seconds` of a freshly built model, freed afterwards."""
  tf.keras.utils.set_random_seed(args.seed)
  seconds = step_seconds(build(), learning_rate, batch, args.warm_up,
                         args.steps, lazy)
  tf.keras.backend.clear_session()
  gc.collect()
  return round(seconds, 4)


def sequence_config(positions_per_batch: int | None) -> sasrec.SasRecConfig:
  """The default `SasRecConfig`, or it with `positions_per_batch` if set."""
  if positions_per_batch:
    return sasrec.SasRecConfig(positions_per_batch=positions_per_batch)
  return sasrec.SasRecConfig()


def measure(num_items: int, args: argparse.Namespace) -> dict:
  """The three steps' seconds on a synthetic catalogue of `num_items`."""
  rng = np.random.default_rng(args.seed)
  vocab, catalogue, probability = synthetic_catalogue(num_items, rng)
  sasrec_config = sequence_config(args.positions_per_batch)
  two_tower_config = two_tower.TwoTowerConfig()

  def sequence_model(sampled: bool) -> tf.keras.Model:
    served = sasrec.build_sasrec(vocab, catalogue, probability, sasrec_config)
    return sasrec.SequenceRetrievalModel(
        served.query_tower, served.candidate_tower, catalogue, probability,
        sasrec_config, sampled)

  windows = sequence_batch(probability, sasrec_config.positions_per_batch,
                           rng)
  positions = int(tf.size(windows[features.ITEM_INDEX]))
  row = {"items": num_items, "positions": positions,
         "exact_logits_gib": round(
             positions * num_items * _FLOAT_BYTES / 2**30, 2)}
  for lazy, key in ((False, "sampled_step_s"), (True, "sampled_lazy_step_s")):
    common.log(f"{num_items} items: sampled softmax, lazy Adam {lazy}")
    row[key] = _timed(lambda: sequence_model(True),
                      sasrec_config.learning_rate, windows, args, lazy)
  if num_items <= args.exact_max_items:
    common.log(f"{num_items} items: exact softmax")
    row["exact_step_s"] = _timed(lambda: sequence_model(False),
                                 sasrec_config.learning_rate, windows, args)
    row["sampled_over_exact"] = round(
        row["sampled_step_s"] / row["exact_step_s"], 3)
  interactions = interaction_batch(catalogue, probability,
                                   two_tower_config.batch_size, rng)
  for lazy, key in ((False, "two_tower_step_s"),
                    (True, "two_tower_lazy_step_s")):
    common.log(f"{num_items} items: two-tower, lazy Adam {lazy}")
    row[key] = _timed(
        lambda: two_tower.build_two_tower(vocab, catalogue, probability,
                                          two_tower_config),
        two_tower_config.learning_rate, interactions, args, lazy)
  return row


def report(rows: list[dict]) -> str:
  """The console table: steps, sampled / exact, growth from the smallest."""
  first = rows[0]

  def growth(row, key):
    return f"{row[key] / first[key]:.2f}x" if key in row else "-"

  def lazy_over_adam(row, variant):
    return f"{row[f'{variant}_lazy_step_s'] / row[f'{variant}_step_s']:.3f}"

  return common.aligned_table(
      ["items", "exact s", "sampled s", "sampled / exact",
       "exact growth", "sampled growth", "sampled lazy s", "lazy / Adam",
       "sampled lazy growth", "two-tower s", "two-tower growth",
       "two-tower lazy s", "lazy / Adam", "two-tower lazy growth"],
      [[f"{row['items']:,}",
        (f"{row['exact_step_s']:.4f}" if "exact_step_s" in row else
         f"not run ({row['exact_logits_gib']} GiB of logits)"),
        f"{row['sampled_step_s']:.4f}",
        f"{row['sampled_over_exact']:.3f}" if "sampled_over_exact" in row
        else "-",
        growth(row, "exact_step_s"), growth(row, "sampled_step_s"),
        f"{row['sampled_lazy_step_s']:.4f}", lazy_over_adam(row, "sampled"),
        growth(row, "sampled_lazy_step_s"),
        f"{row['two_tower_step_s']:.4f}", growth(row, "two_tower_step_s"),
        f"{row['two_tower_lazy_step_s']:.4f}", lazy_over_adam(row, "two_tower"),
        growth(row, "two_tower_lazy_step_s")]
       for row in rows])


def argument_parser() -> argparse.ArgumentParser:
  """The command line."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--items", type=int, nargs="+",
                      default=[5_000, 20_000, 50_000, 100_000, 300_000,
                               1_000_000],
                      help="catalogue sizes (measured smallest first)")
  parser.add_argument("--exact-max-items", type=int, default=100_000,
                      help="the largest catalogue the exact softmax is timed "
                      "on (its logits alone are positions x items floats)")
  parser.add_argument("--positions-per-batch", type=int, default=None,
                      help="SASRec's positions per step (default: "
                      "SasRecConfig's)")
  parser.add_argument("--warm-up", type=int, default=2)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output", required=True, help="JSON path")
  return parser


def main(argv=None) -> int:
  args = argument_parser().parse_args(argv)
  command = common.command("benchmarks.softmax_cost", argv)
  machine = common.machine()
  load_average_start = [round(load, 2) for load in os.getloadavg()]
  started = time.time()
  rows = []
  for num_items in sorted(args.items):
    rows.append(measure(num_items, args))
    # Written after each catalogue: a run cut short keeps what it measured.
    common.write_results(args.output, {
        "command": command, "args": vars(args), "machine": machine,
        "load_average_start": load_average_start,
        "load_average_end": [round(load, 2) for load in os.getloadavg()],
        "wall_s": round(time.time() - started, 1), "rows": rows,
        "complete": len(rows) == len(args.items),
        "peak_rss_mib": round(common.peak_rss_mib(), 1)})
  print(report(rows))
  print("Ratio: the sampled softmax's step over the exact one's at the same "
        "catalogue size, in this run.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
