"""The Beam job of InteractionExampleGen: contract files -> split tf.Examples.

The steps, each on any Beam runner (`data.examples` says what each computes;
this module only distributes it, so the examples equal
`examples.build_examples`):

1. Read: a worker streams the interactions file through the data contract
   (`data.contract.read_interaction_chunks`, validating a chunk of rows at a
   time; a bad row fails the job naming file, row and field) and emits each
   positive with its row number, which orders same-second events as the file
   does. The positives of a window of up to `group_rows` file rows go out
   as one value per user, packed (`user_sequences.packed_events_by_user`): a
   runner that groups in memory holds an object per value, so few, small
   values keep its memory down, whether the file is written user by user
   or in time order.
2. Group per user: `GroupByKey` on the user (which also spreads the events
   over the workers), then one `UserSequence` per user, which travels
   between stages packed too (`UserSequenceCoder`).
3. Global passes, each a combiner over small counts: the temporal cut from
   per-timestamp counts, the activity terciles from a histogram of train
   counts, per-item train counts for popularity buckets and the negative
   sampler, the eval user count and the seeded eval user sample.
4. Per user: `example_rows.finish_user_examples` with the global stats as a
   side input writes the user's train example (every train positive once)
   and eval rows, which go to sharded, gzipped TFRecord files, one folder per
   split.

Memory per worker: one window of the file while reading, one user's history
while building rows, and side inputs the size of the catalogue (titles,
popularity) and of the distinct timestamps (the temporal cut), never the log.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
from typing import Iterable

import apache_beam as beam
import pandas as pd
import tensorflow as tf

from data import contract
from data import example_rows
from data import examples
from data import features
from data import global_passes
from data import user_sequences

METRICS_NAMESPACE = "InteractionExampleGen"
SUMMARY_FILE = "example_gen_summary.json"


def to_tf_example(row: dict) -> tf.train.Example:
  """Serializes one raw feature dict: floats, ints, str, lists of str and
  the lists of ints `features.INT_LIST_FEATURES` names."""
  # Filled in place: building a Feature per value costs several times more,
  # and this runs once per row.
  example = tf.train.Example()
  feature_map = example.features.feature
  for name, value in row.items():
    feature = feature_map[name]
    if isinstance(value, float):
      feature.float_list.value.append(value)
    elif isinstance(value, int):
      feature.int64_list.value.append(value)
    elif name in features.INT_LIST_FEATURES:
      # Named, not inferred: an empty list has no type of its own.
      feature.int64_list.SetInParent()
      feature.int64_list.value.extend(value)
    else:
      values = value if isinstance(value, list) else [value]
      # An empty list is still a bytes feature, of length 0.
      feature.bytes_list.SetInParent()
      feature.bytes_list.value.extend(str(v).encode("utf-8") for v in values)
  return example


@dataclasses.dataclass(frozen=True)
class ExampleGenJob:
  """What the job reads, how it splits, and where it writes.

  Attributes:
    dataset_dir: a contract directory (local path or URI).
    split_dirs: split name (`train`, `eval`) -> output folder.
    summary_path: where the JSON summary (`SUMMARY_FILE`) goes.
    split: `leave_last_out` or `temporal`.
    eval_holdout: see `examples.build_examples`.
    temporal_cut_quantile: see `examples.build_examples`.
    history_length: see `examples.build_examples`.
    ctr_negatives: see `examples.build_examples`.
    negative_seed: see `examples.build_examples`.
    eval_max_users: see `examples.build_examples`.
    chunk_rows: rows of the interactions file a reader validates at once.
    group_rows: rows of the interactions file whose positives a reader
      groups per user before sending them on.
  """
  dataset_dir: str
  split_dirs: dict[str, str]
  summary_path: str
  split: str = user_sequences.LEAVE_LAST_OUT
  eval_holdout: int = 1
  temporal_cut_quantile: float = 0.9
  history_length: int = 50
  ctr_negatives: int = 0
  negative_seed: int = 0
  eval_max_users: int = 0
  chunk_rows: int = contract.DEFAULT_CHUNK_ROWS
  # The reader holds a million rows' positives, the same at every log size.
  # In exchange, a log in time order sends each user's events in one value
  # per million rows rather than per chunk, which keeps ExampleGen within
  # 1.5x from 1M to 10M (benchmarks/README.md, "ExampleGen's grouping,
  # packed").
  group_rows: int = 1_000_000

  def rule(self, cut: int | None) -> user_sequences.SplitRule:
    return user_sequences.SplitRule(self.split, self.eval_holdout, cut,
                              self.temporal_cut_quantile)


class ReadPositiveEventsFn(beam.DoFn):
  """Dataset directory -> `(user_id, packed events)` per user and window.

  The file is validated chunk by chunk, but the positives of a window of
  up to `group_rows` rows go out together, one value per user, because the
  grouping that follows may hold every value in memory at once (it does on
  the DirectRunner). A file written user by user gives about one value per
  user; one in time order, one per user and window.
  """

  def __init__(self, chunk_rows: int, group_rows: int):
    self._chunk_rows = chunk_rows
    self._group_rows = group_rows

  def process(self, dataset_dir: str):
    interactions_path, _, _ = contract.find_dataset_files(dataset_dir)
    window, window_rows = [], 0
    for chunk in contract.read_interaction_chunks(interactions_path,
                                                  self._chunk_rows):
      window.append(user_sequences.positive_event_columns(chunk))
      window_rows += len(chunk)
      if window_rows >= self._group_rows:
        yield from user_sequences.packed_events_by_user(pd.concat(window))
        window, window_rows = [], 0
    if window:
      yield from user_sequences.packed_events_by_user(pd.concat(window))


def _user_sequence(user_id: str,
                   packed_event_groups: Iterable[bytes]
                   ) -> user_sequences.UserSequence:
  return user_sequences.user_sequence(user_id, itertools.chain.from_iterable(
      map(user_sequences.unpack_events, packed_event_groups)))


class UserSequenceCoder(beam.coders.Coder):
  """Encodes a `UserSequence` packed (`user_sequences.pack_sequence`).

  The sequences are kept between stages, all at once on the DirectRunner;
  pickled they would take several times the space.
  """

  def encode(self, value: user_sequences.UserSequence) -> bytes:
    return user_sequences.pack_sequence(value)

  def decode(self, encoded: bytes) -> user_sequences.UserSequence:
    return user_sequences.unpack_sequence(encoded)

  def is_deterministic(self) -> bool:
    return True


beam.coders.registry.register_coder(user_sequences.UserSequence,
                                    UserSequenceCoder)


def _read_side_info(dataset_dir: str) -> dict:
  _, items_path, _ = contract.find_dataset_files(dataset_dir)
  return example_rows.item_side_info(
      contract.read_items(items_path) if items_path else None)


def _temporal_cut(timestamp_counts: dict[int, int], quantile: float) -> int:
  _check_has_positives(sum(timestamp_counts.values()))
  return global_passes.temporal_cut_from_counts(timestamp_counts, quantile)


def _check_has_positives(user_count: int) -> None:
  if user_count == 0:
    raise ValueError("the interaction log has no positive interaction "
                     f"(label >= {user_sequences.POSITIVE_THRESHOLD}); "
                     "nothing to train on")


def _merge_all_item_stats(stats):
  return functools.reduce(global_passes.merge_item_stats, stats)


def _global_stats(_, job: ExampleGenJob, rule: user_sequences.SplitRule,
                  user_count: int, train_histogram: dict, item_stats: dict,
                  eval_user_count: int, eval_sample: list
                  ) -> global_passes.GlobalStats:
  _check_has_positives(user_count)
  global_passes.check_eval_not_empty(eval_user_count, rule)
  return global_passes.global_stats(
      train_histogram, item_stats,
      global_passes.eval_user_sample(eval_sample, job.eval_max_users))


def _summary(stats: global_passes.GlobalStats, job: ExampleGenJob,
             rule: user_sequences.SplitRule, eval_user_count: int) -> str:
  kept = (eval_user_count if stats.eval_users is None
          else len(stats.eval_users))
  return json.dumps({
      "split": job.split,
      "temporal_cut": rule.cut,
      "eval_users": eval_user_count,
      "eval_users_kept": kept,
      "eval_max_users": job.eval_max_users,
      "eval_users_sampled": kept < eval_user_count,
      "sample_seed": job.negative_seed,
  }, indent=2, sort_keys=True)


def _write_text(text: str, path: str) -> None:
  with beam.io.filesystems.FileSystems.create(path) as stream:
    stream.write(text.encode("utf-8"))


class FinishUserExamplesFn(beam.DoFn):
  """`UserSequence` -> tagged serialized examples of each split."""

  def __init__(self, job: ExampleGenJob):
    self._job = job
    self._examples = {
        split: beam.metrics.Metrics.counter(METRICS_NAMESPACE,
                                            f"{split}_examples")
        for split in (user_sequences.TRAIN, user_sequences.EVAL)}

  def process(self, sequence: user_sequences.UserSequence,
              stats: global_passes.GlobalStats, side_info: dict):
    for split, example in example_rows.finish_user_examples(
        sequence, stats, self._job.history_length, side_info,
        self._job.ctr_negatives, self._job.negative_seed):
      self._examples[split].inc()
      yield beam.pvalue.TaggedOutput(
          split, to_tf_example(example).SerializeToString())


def add_example_gen_steps(pipeline: beam.Pipeline, job: ExampleGenJob) -> None:
  """Adds the read, group, count and write steps of `job` to `pipeline`."""
  examples.check_arguments(job.split, job.eval_holdout, job.history_length)
  dataset_dir = pipeline | "DatasetDir" >> beam.Create([job.dataset_dir])
  side_info = beam.pvalue.AsSingleton(
      dataset_dir | "ReadItems" >> beam.Map(_read_side_info))
  sequences = (
      dataset_dir
      | "ReadPositives" >> beam.ParDo(
          ReadPositiveEventsFn(job.chunk_rows, job.group_rows))
      | "GroupByUser" >> beam.GroupByKey()
      | "UserSequence" >> beam.MapTuple(_user_sequence).with_output_types(
          user_sequences.UserSequence))

  if job.split == user_sequences.TEMPORAL:
    rule_values = (
        sequences
        | "Timestamps" >> beam.FlatMap(lambda sequence: sequence.timestamps)
        | "CountPerTimestamp" >> beam.combiners.Count.PerElement()
        | "TimestampCounts" >> beam.combiners.ToDict()
        | "TemporalCut" >> beam.Map(_temporal_cut, job.temporal_cut_quantile)
        | "Rule" >> beam.Map(job.rule))
  else:
    rule_values = pipeline | "Rule" >> beam.Create([job.rule(None)])
  rule = beam.pvalue.AsSingleton(rule_values)
  split_sequences = sequences | "Split" >> beam.Map(
      user_sequences.split_sequence, rule).with_output_types(
          user_sequences.UserSequence)

  def singleton(label, values):
    return beam.pvalue.AsSingleton(values | label >> beam.combiners.ToDict())

  train_histogram = singleton(
      "TrainCountHistogram",
      split_sequences
      | "TrainCounts" >> beam.Map(lambda sequence: sequence.n_train)
      | "WithTrain" >> beam.Filter(lambda count: count > 0)
      | "UsersPerTrainCount" >> beam.combiners.Count.PerElement())
  item_stats = singleton(
      "ItemStatsDict",
      split_sequences
      | "ItemTrainStats" >> beam.FlatMap(
          lambda sequence: global_passes.item_train_stats(sequence).items())
      | "ItemStats" >> beam.CombinePerKey(_merge_all_item_stats))
  user_count = beam.pvalue.AsSingleton(
      sequences | "CountUsers" >> beam.combiners.Count.Globally())
  eval_sequences = split_sequences | "WithEval" >> beam.Filter(
      lambda sequence: sequence.n_eval > 0)
  eval_user_count = beam.pvalue.AsSingleton(
      eval_sequences | "CountEvalUsers" >> beam.combiners.Count.Globally())
  eval_sample = beam.pvalue.AsSingleton(
      eval_sequences
      | "EvalUserKeys" >> beam.Map(lambda sequence: global_passes.eval_user_key(
          sequence.user_id, job.negative_seed))
      # A sample of one when none is asked for, which `eval_user_sample`
      # then ignores: the step graph stays the same.
      | "EvalUserSample" >> beam.combiners.Top.Smallest(
          max(job.eval_max_users, 1)))
  stats = (
      pipeline | "Once" >> beam.Create([None])
      | "GlobalStats" >> beam.Map(_global_stats, job, rule, user_count,
                                  train_histogram, item_stats,
                                  eval_user_count, eval_sample))
  _ = (stats
       | "Summary" >> beam.Map(_summary, job, rule, eval_user_count)
       | "WriteSummary" >> beam.Map(_write_text, job.summary_path))

  stored = split_sequences | "Examples" >> beam.ParDo(
      FinishUserExamplesFn(job), beam.pvalue.AsSingleton(stats),
      side_info).with_outputs(user_sequences.TRAIN, user_sequences.EVAL)
  for split, split_dir in job.split_dirs.items():
    _ = stored[split] | f"Write_{split}" >> beam.io.WriteToTFRecord(
        os.path.join(split_dir, "data"), file_name_suffix=".tfrecord.gz")


def run(pipeline: beam.Pipeline, job: ExampleGenJob
        ) -> beam.runners.runner.PipelineResult:
  """Runs `job` on `pipeline` and waits for it to finish."""
  add_example_gen_steps(pipeline, job)
  result = pipeline.run()
  result.wait_until_finish()
  return result
