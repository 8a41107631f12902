"""The retrieval Trainers' full-catalogue validation: seconds per held-out row.

After every epoch the Trainer ranks each held-out row's target against every
servable item (`models.retrieval.validation.Validator`): its cost grows with
rows x items, and at 10M interactions x 1M items (250k held-out rows) it was
most of the Trainer's time after its epoch. This times one validation pass
at each catalogue size with random towers of the default width, against the
Validator at `--baseline-ref` (16 rows at a time against every item at 1M
items), loaded from git in the same process, on the same rows.

    python -m benchmarks.validation_cost --items 100000 1000000 --rows 4096
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks import common
from data import features
from models import catalogue as catalogue_lib
from models.retrieval import validation

MODULE = "benchmarks.validation_cost"
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_VALIDATION_PATH = "models/retrieval/validation.py"
_HISTORY_LENGTH = 50
_EMBEDDING_DIM = 64


def validation_at(ref: str, scratch: pathlib.Path):
  """The validation module as it was at git commit `ref`."""
  source = subprocess.run(["git", "show", f"{ref}:{_VALIDATION_PATH}"],
                          cwd=_REPO_ROOT, check=True, capture_output=True,
                          text=True).stdout
  path = scratch / "validation_at_ref.py"
  path.write_text(source)
  spec = importlib.util.spec_from_file_location("validation_at_ref", path)
  module = importlib.util.module_from_spec(spec)
  # Dataclasses look their module up while the class is made.
  sys.modules[spec.name] = module
  spec.loader.exec_module(module)
  return module


def _validator_arguments(num_items: int, num_rows: int, seed: int):
  """A Validator's arguments: rows, catalogue and random towers."""
  rng = np.random.default_rng(seed)
  item_vectors = tf.constant(
      rng.standard_normal((num_items, _EMBEDDING_DIM)).astype(np.float32))
  user_vectors = tf.constant(
      rng.standard_normal((num_rows, _EMBEDDING_DIM)).astype(np.float32))
  catalogue = catalogue_lib.ItemCatalogue(
      item_ids=np.arange(num_items).astype(str).astype(object),
      candidate_features={features.ITEM_INDEX: np.arange(num_items)},
      train_counts=(rng.random(num_items) > 0.1).astype(np.float64))
  rows = {
      features.USER_INDEX: np.arange(num_rows),
      features.ITEM_INDEX: rng.integers(1, num_items, num_rows),
      features.HISTORY_ITEM_INDICES: rng.integers(
          0, num_items, (num_rows, _HISTORY_LENGTH))}
  return (rows, catalogue,
          lambda batch: tf.gather(user_vectors, batch[features.USER_INDEX]),
          lambda items: tf.gather(item_vectors, items[features.ITEM_INDEX]))


def _timed(validator) -> tuple[float, object]:
  validator()  # Traces the towers.
  started = time.perf_counter()
  scores = validator()
  return time.perf_counter() - started, scores


def measure(num_items: int, num_rows: int, baseline_module) -> dict:
  """One validation pass by the current and the baseline Validator."""
  arguments = _validator_arguments(num_items, num_rows, seed=0)
  seconds, scores = _timed(validation.Validator(*arguments))
  baseline_seconds, baseline_scores = _timed(
      baseline_module.Validator(*arguments))
  return {"items": num_items, "rows": num_rows,
          "seconds": round(seconds, 3),
          "baseline_seconds": round(baseline_seconds, 3),
          "ms_per_row": round(seconds / num_rows * 1e3, 3),
          "baseline_ms_per_row": round(baseline_seconds / num_rows * 1e3, 3),
          "speedup": round(baseline_seconds / seconds, 2),
          # Two modules' classes, the older with fewer metrics: compare
          # the values of those both measure.
          "same_scores": _same_scores(scores, baseline_scores)}


def _same_scores(scores, baseline_scores) -> bool:
  current = dataclasses.asdict(scores)
  baseline = dataclasses.asdict(baseline_scores)
  return all(current[name] == baseline[name]
             for name in current.keys() & baseline.keys())


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--items", type=int, nargs="+",
                      default=[100_000, 1_000_000])
  parser.add_argument("--rows", type=int, default=4096,
                      help="held-out rows validated")
  parser.add_argument("--baseline-ref", default="16c3dd1",
                      help="git commit of the Validator to compare with")
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "validation_cost.json"))
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as scratch:
    baseline = validation_at(args.baseline_ref, pathlib.Path(scratch))
    records = [measure(items, args.rows, baseline) for items in args.items]
  print(common.aligned_table(
      ["items", "rows", "s", "ms/row", f"{args.baseline_ref} ms/row",
       "speed-up", "same scores"],
      [[f"{r['items']:,}", f"{r['rows']:,}", f"{r['seconds']:.1f}",
        f"{r['ms_per_row']:.2f}", f"{r['baseline_ms_per_row']:.2f}",
        f"{r['speedup']:.2f}x", str(r["same_scores"])] for r in records]))
  print(f"Baseline: the Validator at {args.baseline_ref}, same rows and "
        "towers, in this run.")
  common.write_results(args.output, {
      "command": common.command(MODULE, argv), "machine": common.machine(),
      "baseline_ref": args.baseline_ref, "points": records})
  return 0


if __name__ == "__main__":
  sys.exit(main())
