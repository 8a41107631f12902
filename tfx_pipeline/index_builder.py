"""Beam job: embed every item with the candidate tower, build a ScaNN index.

Reads raw tf.Examples, keeps one row per item, embeds the items in batches
with the model's `candidate_embedding` signature and writes

- the indexed model: a copy of the input SavedModel plus the index under
  `assets.extra/scann_index/` (see `serving.scann_index`), which stock TF
  Serving loads as a plain SavedModel and the project's retrieval server loads
  with its index;
- optionally, a SavedModel wrapping the query tower with
  `tfrs.layers.factorized_top_k.ScaNN` (`tfx_pipeline.scann_layer_export`),
  for a TF Serving built with the ScaNN ops. Loading it needs `import scann`
  first, which registers those ops.

A multi-vector query tower (`query_embedding` returning `[batch, K, dim]`)
needs nothing different at build time: the index holds items only. At query
time each of a user's K vectors searches the index and the lists merge, by
`ScannParams.merge_rule` over `ScannParams.neighbors_per_vector` neighbours
per vector (`serving.multi_vector`), both stored with the index.

Reading, deduplication and embedding run in parallel on any Beam runner. The
index build gathers every embedding on ONE worker, because ScaNN's tree
training and hashing are single-machine; that worker needs memory for all
embeddings (items x dim x 4 bytes, twice over).

Run on its own with `python -m tfx_pipeline.index_builder --help`; any flag it
does not know (`--runner=FlinkRunner`, `--direct_num_workers=4`, ...) goes to
Beam. The `ScannIndexGen` component runs the same job inside the pipeline.
"""


import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from typing import Iterable, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult
import numpy as np
import tensorflow as tf

from data import example_rows
from data import features
from models import serving_names
from serving import scann_index
from tfx_pipeline import artifact_files
from tfx_pipeline import scann_layer_export
from transforms import filesystems

METRICS_NAMESPACE = "index_builder"
ITEMS_EMBEDDED_COUNTER = "items_embedded"
DEFAULT_BATCH_SIZE = 256
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Item:
  """The candidate-tower inputs of one item, as read from a raw example."""
  item_id: str
  title: str
  categories: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class IndexJob:
  """What one index build reads and writes.

  Attributes:
    model_dir: SavedModel with `candidate_embedding` and `query_embedding`.
    examples_pattern: file pattern of gzip TFRecords of raw tf.Examples.
    indexed_model_dir: where the copy of the model plus its index goes.
    scann_layer_model_dir: where the ScaNN-layer SavedModel goes; empty to
      skip it.
    params: ScaNN parameters, shared by both outputs.
    batch_size: most items per `candidate_embedding` call.
  """
  model_dir: str
  examples_pattern: str
  indexed_model_dir: str
  scann_layer_model_dir: str = ""
  params: scann_index.ScannParams = scann_index.ScannParams()
  batch_size: int = DEFAULT_BATCH_SIZE


def _bytes_values(example: tf.train.Example, name: str) -> list[str]:
  return [value.decode("utf-8")
          for value in example.features.feature[name].bytes_list.value]


def parse_items(serialized: bytes) -> list[Item]:
  """The item of each row one serialized raw tf.Example stands for.

  An eval row is one row; a train example (one per user) is one row per
  train positive, the history positions that carry their own title and
  categories and its own item, and one per CTR negative.
  """
  example = tf.train.Example.FromString(serialized)
  titles = _bytes_values(example, features.ITEM_TITLE)
  own_item = Item(
      item_id=_bytes_values(example, features.ITEM_ID)[0],
      title=titles[0] if titles else "",
      categories=tuple(_bytes_values(example, features.ITEM_CATEGORIES)))
  def items(*names):
    """The items of aligned id, title and joined-categories lists."""
    return [Item(item_id, title, tuple(example_rows.split_categories(joined)))
            for item_id, title, joined in zip(
                *(_bytes_values(example, name) for name in names))]
  return [*items(features.HISTORY_ITEM_IDS, features.HISTORY_ITEM_TITLES,
                 features.HISTORY_ITEM_CATEGORIES),
          own_item,
          *items(features.NEGATIVE_ITEM_IDS, features.NEGATIVE_ITEM_TITLES,
                 features.NEGATIVE_ITEM_CATEGORIES)]


class _KeepAnyRow(beam.CombineFn):
  """Keeps one value per key: item features are the same in every row."""

  def create_accumulator(self) -> Optional[Item]:
    return None

  def add_input(self, kept: Optional[Item], item: Item) -> Item:
    return item if kept is None else kept

  def merge_accumulators(self, accumulators: Iterable[Optional[Item]]
                         ) -> Optional[Item]:
    return next((kept for kept in accumulators if kept is not None), None)

  def extract_output(self, kept: Optional[Item]) -> Optional[Item]:
    return kept


def candidate_inputs(items: Sequence[Item]) -> dict[str, tf.Tensor]:
  """The `candidate_embedding` inputs of a batch; categories padded with ""."""
  width = max(1, max(len(item.categories) for item in items))
  categories = [list(item.categories) + [""] * (width - len(item.categories))
                for item in items]
  return {
      features.ITEM_ID: tf.constant([item.item_id for item in items]),
      features.ITEM_TITLE: tf.constant([item.title for item in items]),
      features.ITEM_CATEGORIES: tf.constant(categories, tf.string),
  }


class EmbedItemsFn(beam.DoFn):
  """Embeds batches of items; loads the SavedModel once per DoFn instance."""

  def __init__(self, model_dir: str):
    super().__init__()
    self._model_dir = model_dir
    self._items_embedded = beam.metrics.Metrics.counter(
        METRICS_NAMESPACE, ITEMS_EMBEDDED_COUNTER)

  def setup(self) -> None:
    # The loaded object owns the variables; the signature alone does not keep
    # them alive.
    self._model = tf.saved_model.load(self._model_dir)
    self._embed = self._model.signatures[serving_names.CANDIDATE_EMBEDDING]

  def process(self, items: list[Item]) -> Iterator[tuple[str, np.ndarray]]:
    embeddings = self._embed(**candidate_inputs(items))[serving_names.EMBEDDING].numpy()
    self._items_embedded.inc(len(items))
    yield from zip((item.item_id for item in items), embeddings)


def write_indexed_model(model_dir: str, index: scann_index.ScannIndex,
                        indexed_model_dir: str) -> None:
  """Writes a copy of the SavedModel with `index` in its `assets.extra/`."""
  # An index already in the input model is stale: this one replaces it.
  artifact_files.copy_tree(model_dir, indexed_model_dir,
                           skip_subdir=scann_index.INDEX_SUBDIR)
  target_index_dir = scann_index.index_dir(indexed_model_dir)
  if tf.io.gfile.exists(target_index_dir):
    tf.io.gfile.rmtree(target_index_dir)
  # ScaNN serializes to local files only; stage them, then copy.
  with tempfile.TemporaryDirectory() as staging_dir:
    artifact_files.copy_tree(index.write(staging_dir), target_index_dir)


def build_and_write_outputs(embedded: list[tuple[str, np.ndarray]],
                            job: IndexJob) -> int:
  """Builds the index over all embeddings and writes the outputs.

  This is the single-worker step of the job.

  Returns:
    The number of indexed items.
  """
  embedded = sorted(embedded, key=lambda pair: pair[0])
  item_ids = [item_id for item_id, _ in embedded]
  embeddings = np.stack([embedding for _, embedding in embedded])
  start = time.monotonic()
  index = scann_index.ScannIndex.build(embeddings, item_ids, job.params)
  _log.info("built a ScaNN index of %d items x %d dims in %.1fs",
            len(item_ids), index.dimension, time.monotonic() - start)
  write_indexed_model(job.model_dir, index, job.indexed_model_dir)
  _log.info("wrote the indexed model to %s", job.indexed_model_dir)
  if job.scann_layer_model_dir:
    start = time.monotonic()
    scann_layer_export.export_scann_layer_model(job.model_dir, embeddings, item_ids, index.params,
                             job.scann_layer_model_dir)
    _log.info("wrote the ScaNN-layer model to %s in %.1fs",
              job.scann_layer_model_dir, time.monotonic() - start)
  return len(item_ids)


def add_index_steps(pipeline: beam.Pipeline, job: IndexJob) -> None:
  """Adds the read, dedup, embed and index steps of `job` to `pipeline`."""
  _ = (
      pipeline
      | "ReadExamples" >> beam.io.ReadFromTFRecord(
          job.examples_pattern, compression_type=CompressionTypes.GZIP)
      | "ParseItems" >> beam.FlatMap(parse_items)
      | "KeyByItemId" >> beam.Map(lambda item: (item.item_id, item))
      | "OneRowPerItem" >> beam.CombinePerKey(_KeepAnyRow())
      | "DropKeys" >> beam.Values()
      | "Batch" >> beam.BatchElements(max_batch_size=job.batch_size)
      | "Embed" >> beam.ParDo(EmbedItemsFn(job.model_dir))
      | "GatherOnOneWorker" >> beam.combiners.ToList()
      | "BuildAndWriteIndex" >> beam.Map(build_and_write_outputs, job))


def items_embedded(result: PipelineResult) -> int:
  """The job's embedded-items counter; -1 where the runner reports none."""
  try:
    counters = result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(
            ITEMS_EMBEDDED_COUNTER))["counters"]
  except NotImplementedError:  # Some runners do not report metrics.
    return -1
  return sum(counter.committed for counter in counters)


def run(pipeline: beam.Pipeline, job: IndexJob
        ) -> PipelineResult:
  """Runs the index job on `pipeline` and waits for it to finish."""
  start = time.monotonic()
  add_index_steps(pipeline, job)
  result = pipeline.run()
  result.wait_until_finish()
  _log.info("index job: %d items embedded, %.1fs in all",
            items_embedded(result), time.monotonic() - start)
  return result


def _parse_args(argv: Sequence[str]) -> tuple[IndexJob, list[str]]:
  """Splits the command line into the job and the Beam pipeline args."""
  parser = argparse.ArgumentParser(
      description="Embeds every item of the examples with the model's "
      "candidate tower and writes the model with a ScaNN index. Unknown flags "
      "are passed to Beam, e.g. --runner=FlinkRunner.")
  parser.add_argument("--model_dir", required=True,
                      help="SavedModel with candidate_embedding and "
                      "query_embedding signatures")
  parser.add_argument("--examples", required=True,
                      help="file pattern of gzip TFRecords of raw tf.Examples")
  parser.add_argument("--output_dir", required=True,
                      help="the indexed model: a copy of --model_dir plus "
                      "assets.extra/scann_index/")
  parser.add_argument("--scann_layer_output_dir", default="",
                      help="if set, also export the query tower with a TFRS "
                      "ScaNN layer here (needs ScaNN ops in TF Serving)")
  parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                      help="most items per candidate_embedding call")
  for field in dataclasses.fields(scann_index.ScannParams):
    parser.add_argument(f"--{field.name}", type=type(field.default),
                        default=field.default, help="ScaNN parameter, see "
                        "serving.scann_index.ScannParams")
  args, beam_args = parser.parse_known_args(argv)
  params = scann_index.ScannParams(**{
      field.name: getattr(args, field.name)
      for field in dataclasses.fields(scann_index.ScannParams)})
  job = IndexJob(model_dir=args.model_dir, examples_pattern=args.examples,
                 indexed_model_dir=args.output_dir,
                 scann_layer_model_dir=args.scann_layer_output_dir,
                 params=params, batch_size=args.batch_size)
  return job, beam_args


def main(argv: Sequence[str]) -> None:
  logging.basicConfig(level=logging.INFO,
                      format="%(asctime)s %(levelname)s %(message)s")
  job, beam_args = _parse_args(argv)
  if not any(arg.startswith("--runner") for arg in beam_args):
    beam_args = ["--runner=DirectRunner", *beam_args]
  run(beam.Pipeline(options=PipelineOptions(beam_args)), job)


if __name__ == "__main__":
  main(sys.argv[1:])
  filesystems.exit_process(0)
