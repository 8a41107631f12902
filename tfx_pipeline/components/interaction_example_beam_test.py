"""The Beam ExampleGen writes exactly the examples of
`examples.build_examples`."""

from __future__ import annotations

import json

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from data import contract
from data import examples
from data import importers
from data import user_sequences
from tests import prerequisites
from tfx_pipeline.components import example_gen_testing
from tfx_pipeline.components import interaction_example_beam

# Users of the Grocery sample: the whole log (14,681 users) takes minutes
# through the DirectRunner; benchmarks/README.md has the full comparison.
GROCERY_SAMPLE_USERS = 1000


def _run(dataset_dir, tmp_path, **options) -> dict:
  job = interaction_example_beam.ExampleGenJob(
      dataset_dir=str(dataset_dir),
      split_dirs={split: str(tmp_path / "out" / split)
                  for split in (user_sequences.TRAIN, user_sequences.EVAL)},
      summary_path=str(tmp_path / "out" / "summary.json"), **options)
  interaction_example_beam.run(beam.Pipeline(options=PipelineOptions(
      ["--runner=DirectRunner", "--direct_running_mode=in_memory"])), job)
  return {split: example_gen_testing.written_examples(split_dir)
          for split, split_dir in job.split_dirs.items()}


def _assert_equal_to_build_examples(dataset_dir, tmp_path, **options):
  written = _run(dataset_dir, tmp_path, **options)
  build_options = {name: value for name, value in options.items()
                   if name not in ("chunk_rows", "group_rows")}
  stored = examples.build_examples(contract.load_dataset(dataset_dir),
                                   **build_options)
  assert written[user_sequences.TRAIN] == example_gen_testing.expected_examples(
      stored.train)
  assert written[user_sequences.EVAL] == example_gen_testing.expected_examples(
      stored.eval)
  return written


def _tricky_log(directory, time_ordered: bool = False) -> str:
  """Same-second events, exact repeats, negatives, queries, several chunks.

  Written user by user, or in time order, where every user's events are
  spread over the file.
  """
  rows = []
  for user in range(12):
    for step in range(3 + user % 4):
      # Every user clicks two items in the same second: file order decides.
      rows.append((f"u{user}", f"i{(user + step) % 7}", 100 + step // 2, 1.0,
                   "video" if step % 3 == 0 else "item", f"q{step}"))
    rows.append((f"u{user}", "i0", 100, 1.0, "item", "repeat"))
    rows.append((f"u{user}", "i9", 101, 0.0, "item", ""))
  interactions = contract.normalize_interactions(pd.DataFrame(
      rows, columns=["user_id", "item_id", "timestamp", "label", "item_type",
                     "query"]))
  if time_ordered:
    interactions = interactions.sort_values("timestamp", kind="stable",
                                            ignore_index=True)
  items = contract.normalize_items(pd.DataFrame({
      "item_id": [f"i{k}" for k in range(7)],
      "title": [f"title {k}" for k in range(7)],
      "category": ["a|b"] * 7}))
  return contract.write_dataset(contract.Dataset(interactions, items),
                                directory)


def test_temporal_split_with_negatives_gives_the_examples_of_build_examples(tmp_path):
  dataset_dir = _tricky_log(tmp_path / "data")
  _assert_equal_to_build_examples(
      dataset_dir, tmp_path, split=user_sequences.TEMPORAL,
      temporal_cut_quantile=0.6, history_length=2, ctr_negatives=2,
      negative_seed=3, chunk_rows=7, group_rows=14)


def test_a_log_in_time_order_gives_the_examples_of_build_examples(tmp_path):
  dataset_dir = _tricky_log(tmp_path / "data", time_ordered=True)
  _assert_equal_to_build_examples(dataset_dir, tmp_path, ctr_negatives=2,
                              chunk_rows=7, group_rows=21)


def test_the_reader_sends_one_value_per_user_and_window(tmp_path):
  dataset_dir = _tricky_log(tmp_path / "data", time_ordered=True)
  interactions = contract.load_dataset(dataset_dir).interactions
  positives = user_sequences.positive_rows(interactions)
  # Windows of three 7-row chunks.
  windows = positives.index // 21
  expected = {(user_id, window) for user_id, window in zip(
      positives["user_id"], windows)}
  sent = list(interaction_example_beam.ReadPositiveEventsFn(
      chunk_rows=7, group_rows=21).process(str(dataset_dir)))
  assert len(sent) == len(expected) < len(positives)
  events = sorted((user_id, event) for user_id, packed in sent
                  for event in user_sequences.unpack_events(packed))
  assert events == sorted(
      (user_id, event) for user_id, user_events
      in user_sequences.positive_events_by_user(interactions).items()
      for event in user_events)


def test_sampled_eval_users_give_the_examples_of_build_examples_and_say_so(tmp_path):
  dataset_dir = _tricky_log(tmp_path / "data")
  written = _assert_equal_to_build_examples(
      dataset_dir, tmp_path, eval_holdout=2, eval_max_users=5, ctr_negatives=3,
      negative_seed=7, chunk_rows=7)
  summary = json.loads((tmp_path / "out" / "summary.json").read_text())
  assert summary["eval_users_sampled"] is True
  assert (summary["eval_users"], summary["eval_users_kept"]) == (12, 5)
  eval_users = {dict(example)["user_id"]
                for example in written[user_sequences.EVAL]}
  assert len(eval_users) == 5


def test_a_bad_row_fails_the_job_naming_file_line_and_field(tmp_path):
  dataset_dir = _tricky_log(tmp_path / "data")
  path = dataset_dir / "interactions.csv"
  lines = path.read_text().splitlines()
  fields = lines[30].split(",")
  fields[2] = "soon"
  lines[30] = ",".join(fields)
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(Exception, match=(
      r"interactions.csv line 31, field 'timestamp': cannot parse 'soon'")):
    _run(dataset_dir, tmp_path, chunk_rows=7)


def _imported(name: str, directory, n_users: int | None = None):
  dataset = importers.IMPORTERS[name](prerequisites.shared_data_root(name))
  interactions = dataset.interactions
  if n_users is not None:
    keep = sorted(interactions["user_id"].unique(), key=int)[:n_users]
    interactions = interactions[interactions["user_id"].isin(keep)]
  return contract.write_dataset(
      contract.Dataset(interactions.reset_index(drop=True), dataset.items),
      directory)


@pytest.mark.e2e
def test_movielens_100k_gives_the_examples_of_build_examples(tmp_path):
  dataset_dir = _imported("movielens-100k", tmp_path / "data")
  written = _assert_equal_to_build_examples(dataset_dir, tmp_path,
                                        chunk_rows=30_000)
  assert sum(written[user_sequences.EVAL].values()) == 942


@pytest.mark.e2e
def test_grocery_sample_gives_the_examples_of_build_examples(tmp_path):
  dataset_dir = _imported("amazon-grocery", tmp_path / "data",
                          n_users=GROCERY_SAMPLE_USERS)
  _assert_equal_to_build_examples(dataset_dir, tmp_path, ctr_negatives=2)


def test_user_sequences_travel_between_stages_packed(tmp_path):
  job = interaction_example_beam.ExampleGenJob(
      dataset_dir=str(tmp_path), split_dirs={},
      summary_path=str(tmp_path / "summary.json"))
  pipeline = beam.Pipeline()
  interaction_example_beam.add_example_gen_steps(pipeline, job)

  class SequenceCoders(beam.pipeline.PipelineVisitor):

    def __init__(self):
      self.coders = {}

    def visit_transform(self, node):
      if node.full_label in ("UserSequence", "Split"):
        self.coders[node.full_label] = beam.coders.registry.get_coder(
            node.outputs[None].element_type)

  visitor = SequenceCoders()
  pipeline.visit(visitor)
  assert {label: type(coder) for label, coder in visitor.coders.items()
          } == {"UserSequence": interaction_example_beam.UserSequenceCoder,
                "Split": interaction_example_beam.UserSequenceCoder}
