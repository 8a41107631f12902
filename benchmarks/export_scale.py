"""What a retrieval SavedModel costs as its catalogue grows, served by bare TF.

For each catalogue size, a `RetrievalServingModule` (embedding dim 64, the
default of `models.retrieval.two_tower`) and an `ItemNeighboursServingModule` (each
item's top `--neighbours` of B) are built over a synthetic catalogue (item
ids "1", "2", ... with Zipf-like train counts, read by
`models.export_testing.fake_transform`), saved, and loaded in a child
Python that imports nothing but TensorFlow, which measures: the
SavedModel's size on disk, its load time, the child's peak RSS, `evaluate`
throughput (examples/s, batches of `--eval-batch` examples with full
histories) and `retrieve_top100` p50/p99 latency at batch 1.

The baseline, in the same run, is the same module with a chunk budget
(`cells_per_chunk`) no request reaches: the whole `[batch, num_items]`
block at once, as before chunking (which also built a
`[batch, history, num_items]` one-hot mask, not reproduced here):

    python -m benchmarks.export_scale --items 25000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import tempfile
import time
from typing import Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from data import features
from models import catalogue as catalogue_lib
from models import catalogue_export
from models import catalogue_scoring
from models import export_testing
from models.item_item import export as item_item_export
from models.item_item import neighbours as item_neighbours
from models.retrieval import export as retrieval_export
from models.retrieval import two_tower
from models import serving_names

MODULE = "benchmarks.export_scale"
EMBEDDING_DIM = two_tower.TwoTowerConfig().embedding_dim
# A chunk budget no request reaches: one chunk, the whole catalogue.
UNCHUNKED = 2**31 - 1
CHUNKED = catalogue_scoring.CELLS_PER_CHUNK


def synthetic_catalogue(num_indices: int) -> catalogue_lib.ItemCatalogue:
  """Item ids "1"... at their own indices (as `export_testing` reads them);
  index 0 is padding and every item has Zipf-like train counts."""
  counts = np.zeros(num_indices)
  counts[1:] = np.floor(1000 / np.arange(1, num_indices)) + 1
  return catalogue_lib.ItemCatalogue(
      item_ids=np.array([""] + [str(index) for index in range(1, num_indices)],
                        dtype=object),
      candidate_features={
          features.ITEM_INDEX: np.arange(num_indices, dtype=np.int64)},
      train_counts=counts)


class _ItemTower(tf.Module):
  """An item's row of a random embedding table."""

  def __init__(self, num_indices: int, rng: np.random.Generator):
    super().__init__()
    self.table = tf.Variable(
        rng.standard_normal((num_indices, EMBEDDING_DIM), np.float32),
        trainable=False)

  def __call__(self, transformed):
    return tf.gather(self.table, transformed[features.ITEM_INDEX])


class _HistoryTower(tf.Module):
  """The mean embedding of a user's history items, padding left out."""

  def __init__(self, item_tower: _ItemTower):
    super().__init__()
    self.item_tower = item_tower

  def __call__(self, transformed):
    history = transformed[features.HISTORY_ITEM_INDICES]
    real = tf.cast(history != features.PADDING_INDEX, tf.float32)
    total = tf.reduce_sum(tf.gather(self.item_tower.table, history) *
                          real[:, :, tf.newaxis], axis=1)
    return total / tf.maximum(tf.reduce_sum(real, axis=1), 1)[:, tf.newaxis]


def build_module(family: str, num_indices: int, cells_per_chunk: int,
                 neighbours: int) -> catalogue_export.CatalogueServingModule:
  """`family` "two_tower" or "item_item" over a synthetic catalogue."""
  rng = np.random.default_rng(0)
  catalogue = synthetic_catalogue(num_indices)
  if family == "two_tower":
    item_tower = _ItemTower(num_indices, rng)
    return retrieval_export.RetrievalServingModule(
        export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC,
        _HistoryTower(item_tower), item_tower, catalogue, cells_per_chunk)
  b = item_neighbours.ItemNeighbours(
      indices=rng.integers(1, num_indices, (num_indices, neighbours)),
      weights=np.sort(rng.random((num_indices, neighbours), np.float32),
                      axis=1)[:, ::-1])
  return item_item_export.ItemNeighboursServingModule(
      export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC, b,
      catalogue, cells_per_chunk)


# Runs in the bare TensorFlow child: prints one JSON line of measurements.
_CHILD = """
import json, os, random, resource, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf

def example(target, history):
  example = tf.train.Example()
  feature = example.features.feature
  feature["user_id"].bytes_list.value.append(b"u")
  feature["item_id"].bytes_list.value.append(str(target).encode())
  feature["history_item_ids"].bytes_list.value.extend(
      str(item).encode() for item in history)
  feature["timestamp"].int64_list.value.append(0)
  return example.SerializeToString()

rng = random.Random(0)
def history():
  return [rng.randrange(1, {num_indices}) for _ in range({history_length})]

started = time.perf_counter()
loaded = tf.saved_model.load({export_dir!r})
load_s = time.perf_counter() - started
load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

evaluate = loaded.signatures[{evaluate!r}]
examples = tf.constant([example(rng.randrange(1, {num_indices}), history())
                        for _ in range({eval_batch})])
evaluate(**{{{examples_input!r}: examples}})
started = time.perf_counter()
for _ in range({eval_batches}):
  evaluate(**{{{examples_input!r}: examples}})
evaluate_s = time.perf_counter() - started

retrieve = loaded.signatures[{retrieve!r}]
latencies = []
for request in range({warm_up} + {requests}):
  inputs = dict(user_id=tf.constant(["u"]),
                history_item_ids=tf.constant([[str(i) for i in history()]]),
                timestamp=tf.constant([0], tf.int64))
  started = time.perf_counter()
  retrieve(**inputs)
  latencies.append(time.perf_counter() - started)
latencies = np.array(latencies[{warm_up}:]) * 1e3
print(json.dumps(dict(
    load_s=round(load_s, 3), rss_after_load_mib=round(load_rss, 1),
    evaluate_examples_per_s=round({eval_batch} * {eval_batches} / evaluate_s,
                                  1),
    retrieve_p50_ms=round(float(np.percentile(latencies, 50)), 3),
    retrieve_p99_ms=round(float(np.percentile(latencies, 99)), 3),
    peak_rss_mib=round(resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, 1))))
"""


def _size_mib(directory: pathlib.Path) -> float:
  return round(sum(path.stat().st_size for path in directory.rglob("*")
                   if path.is_file()) / 2**20, 1)


def measure(family: str, num_indices: int, cells_per_chunk: int,
            args: argparse.Namespace) -> dict:
  """Saves one module and measures it in a bare TensorFlow child."""
  row = {"family": family, "items": num_indices,
         "chunked": cells_per_chunk != UNCHUNKED,
         "cells_per_chunk": cells_per_chunk}
  with tempfile.TemporaryDirectory() as work:
    export_dir = pathlib.Path(work) / "export"
    started = time.perf_counter()
    build_module(family, num_indices, cells_per_chunk,
                 args.neighbours).save(str(export_dir))
    row["build_and_save_s"] = round(time.perf_counter() - started, 1)
    row["saved_model_mib"] = _size_mib(export_dir)
    row["graph_mib"] = round(
        (export_dir / "saved_model.pb").stat().st_size / 2**20, 1)
    try:
      printed = export_testing.run_in_bare_tensorflow(_CHILD.format(
          export_dir=str(export_dir), num_indices=num_indices,
          history_length=features.HISTORY_LENGTH, eval_batch=args.eval_batch,
          eval_batches=args.eval_batches, evaluate=serving_names.EVALUATE,
          examples_input=serving_names.EXAMPLES,
          retrieve=serving_names.retrieve_top(100), warm_up=args.warm_up,
          requests=args.requests), cwd=work)
      row.update(json.loads(printed[-1]))
    except (AssertionError, subprocess.TimeoutExpired) as error:
      # The child failed (out of memory, a crash) or ran past 10 minutes.
      row["failure"] = str(error)[-500:]
  common.log(json.dumps(row))
  return row


def table(rows: Sequence[dict]) -> str:
  columns = ("family", "items", "chunked", "saved_model_mib", "graph_mib",
             "load_s", "peak_rss_mib", "evaluate_examples_per_s",
             "retrieve_p50_ms", "retrieve_p99_ms", "evaluate_speedup")
  return common.aligned_table(
      columns, [[row.get(column, "-") for column in columns] for row in rows])


def main(argv: Sequence[str] | None = None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--items", type=int, nargs="+",
                      default=[25_000, 100_000, 1_000_000],
                      help="catalogue sizes, item indices")
  parser.add_argument("--families", nargs="+",
                      default=["two_tower", "item_item"],
                      choices=["two_tower", "item_item"])
  parser.add_argument("--neighbours", type=int, default=50,
                      help="item-item: B's entries kept per item")
  parser.add_argument("--eval-batch", type=int, default=128)
  parser.add_argument("--eval-batches", type=int, default=3)
  parser.add_argument("--warm-up", type=int, default=3)
  parser.add_argument("--requests", type=int, default=50)
  parser.add_argument("--unchunked-max-items", type=int, default=1_000_000,
                      help="the baseline only up to this catalogue")
  parser.add_argument("--output",
                      default=str(common.RESULTS_DIR / "export_scale.json"))
  args = parser.parse_args(argv)
  started = time.time()
  rows = []
  for num_indices in args.items:
    for family in args.families:
      chunked = measure(family, num_indices, CHUNKED, args)
      rows.append(chunked)
      if num_indices <= args.unchunked_max_items:
        baseline = measure(family, num_indices, UNCHUNKED, args)
        rows.append(baseline)
        if "failure" not in chunked and "failure" not in baseline:
          chunked["evaluate_speedup"] = round(
              chunked["evaluate_examples_per_s"] /
              baseline["evaluate_examples_per_s"], 2)
  print(table(rows), flush=True)
  common.write_results(args.output, {
      "command": common.command(MODULE, argv),
      "args": vars(args), "machine": common.machine(),
      "wall_s": round(time.time() - started, 1),
      "baseline": "the same module with one chunk (cells_per_chunk="
                  f"{UNCHUNKED}): the whole [batch, num_items] block at once",
      "rows": rows})
  return rows


if __name__ == "__main__":
  main()
