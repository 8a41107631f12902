"""Where ExampleGen's bytes go, and what storing item side info once would save.

Builds the examples InteractionExampleGen writes for a contract log in
memory (`data.examples.build_examples`, which the ExampleGen equality tests
hold to the Beam output), and the per-interaction rows it wrote before
examples were stored once per user (`build_rows`). Each is written as
ExampleGen writes it (`to_tf_example`, gzipped TFRecords), and the train
split again without each group of its per-position features, to show what
each group costs. The "side info once per item" line is the train split
without any title or categories per position, plus one example per item
that holds them: the layout a per-item catalogue would give.

    python -m benchmarks.example_bytes  # both shared real datasets
    python -m benchmarks.example_bytes --datasets contract \\
        --dataset-dir /work/perlog/log_1000000_seed0

Writes `benchmarks/results/example_bytes.json` (`--output`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Iterable, Sequence

import tensorflow as tf

from benchmarks import common
from data import contract
from data import example_rows
from data import examples
from data import features
from data import importers
from tfx_pipeline.components import interaction_example_beam

# Groups of a train example's per-position features (aligned with its
# history) and of its CTR negatives.
FEATURE_GROUPS = {
    "titles and categories": (
        features.HISTORY_ITEM_TITLES, features.HISTORY_ITEM_CATEGORIES,
        features.NEGATIVE_ITEM_TITLES, features.NEGATIVE_ITEM_CATEGORIES),
    "timestamps": (features.HISTORY_TIMESTAMPS,),
    "item ids": (features.HISTORY_ITEM_IDS,),
    "item types": (features.HISTORY_ITEM_TYPES,),
    "queries": (features.HISTORY_QUERIES,),
}
SIDE_INFO = FEATURE_GROUPS["titles and categories"] + (
    features.ITEM_TITLE, features.ITEM_CATEGORIES)
ITEM_SIDE_INFO = "side info once per item"


def gzipped_bytes(rows: Iterable[dict], directory: str, name: str,
                  dropped: Sequence[str] = ()) -> int:
  """Bytes of `rows` as one gzipped TFRecord file, `dropped` left out."""
  path = os.path.join(directory, f"{name}.tfrecord.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for row in rows:
      writer.write(interaction_example_beam.to_tf_example(
          {key: value for key, value in row.items() if key not in dropped}
      ).SerializeToString())
  size = os.path.getsize(path)
  os.remove(path)
  return size


def item_examples(dataset: contract.Dataset) -> list[dict]:
  """One example per catalogue item: its id, title and categories."""
  return [{features.ITEM_ID: item_id, features.ITEM_TITLE: title,
           features.ITEM_CATEGORIES: categories}
          for item_id, (title, categories) in
          example_rows.item_side_info(dataset.items).items()]


def measure(dataset: contract.Dataset, directory: str, **options) -> dict:
  """The bytes of each layout of `dataset`'s examples.

  Returns:
    `per_row` (train and eval bytes of per-interaction rows), `per_user`
    (the stored examples), `train_without` (group -> the stored train
    split's bytes without it), the `ITEM_SIDE_INFO` layout's train, items
    and total bytes, and each layout's total over the per-row total.
  """
  stored = examples.build_examples(dataset, **options)
  per_user = {"train": gzipped_bytes(stored.train, directory, "train"),
              "eval": gzipped_bytes(stored.eval, directory, "eval")}
  train_without = {group: gzipped_bytes(stored.train, directory, "train",
                                        names)
                   for group, names in FEATURE_GROUPS.items()}
  once_per_item = {
      "train": gzipped_bytes(stored.train, directory, "train", SIDE_INFO),
      "items": gzipped_bytes(item_examples(dataset), directory, "items"),
      "eval": per_user["eval"]}
  del stored
  rows = examples.build_rows(dataset, **options).train
  per_row = {"train": gzipped_bytes(rows, directory, "rows"),
             "eval": per_user["eval"]}
  del rows
  totals = {"per_row": sum(per_row.values()),
            "per_user": sum(per_user.values()),
            ITEM_SIDE_INFO: sum(once_per_item.values())}
  return {
      "interactions": len(dataset.interactions),
      "per_row": per_row, "per_user": per_user,
      "train_without": train_without, ITEM_SIDE_INFO: once_per_item,
      "totals": totals,
      "per_row_over": {layout: round(totals["per_row"] / total, 2)
                       for layout, total in totals.items()},
  }


def report(label: str, result: dict) -> str:
  stored_train = result["per_user"]["train"]
  layouts = common.aligned_table(
      ["layout", "train MB", "eval MB", "items MB", "total MB",
       "per-row / this"],
      [[layout, round(result[layout]["train"] / 1e6, 2),
        round(result[layout]["eval"] / 1e6, 2),
        round(result[layout].get("items", 0) / 1e6, 2),
        round(result["totals"][layout] / 1e6, 2),
        result["per_row_over"][layout]]
       for layout in ("per_row", "per_user", ITEM_SIDE_INFO)])
  groups = common.aligned_table(
      ["stored train split without", "MB", "share of its bytes"],
      [[group, round(size / 1e6, 2), round(1 - size / stored_train, 3)]
       for group, size in result["train_without"].items()])
  return f"{label}, {result['interactions']:,} interactions\n{layouts}\n\n{groups}"


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS),
                               ["movielens-100k", "amazon-grocery"],
                               multiple=True)
  parser.add_argument("--ctr-negatives", type=int, default=0)
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "example_bytes.json"))
  args = parser.parse_args(argv)

  def run_dataset(name: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as directory:
      return measure(common.load_interactions(name, args), directory,
                     ctr_negatives=args.ctr_negatives)

  return common.run_datasets("benchmarks.example_bytes", argv, args,
                             run_dataset, report)


if __name__ == "__main__":
  main()
