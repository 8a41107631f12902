"""EmbeddingBenchmark on a tiny synthetic model, examples and side tables."""

from __future__ import annotations

import dataclasses
import glob
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tfx.types import channel_utils

from data import contract
from data import features
from models import families
from models import trainer as trainer_lib
from offline_eval import linear_probes
from offline_eval import probes
from tfx_pipeline.components import embedding_benchmark
from tfx_pipeline.components import interaction_example_beam
from tfx_pipeline.index_builder_test import import_examples
from tfx_pipeline.index_builder_test import import_model
from tfx_pipeline.index_builder_test import NUM_ITEMS
from tfx_pipeline.index_builder_test import ROWS_PER_ITEM
from tfx_pipeline.index_builder_test import run_local_pipeline
from tfx_pipeline.index_builder_test import synthetic_rows
from tfx_pipeline.index_builder_test import TinyMultiVectorModel
from tfx_pipeline.index_builder_test import write_examples
from tfx_pipeline.index_builder_test import write_tiny_model

TASKS = [
    {"name": "recall@5", "kind": "next_item", "k": 5},
    {"name": "occupation_f1", "kind": "user_class_f1",
     "attribute": "occupation"},
    {"name": "genre_f1", "kind": "item_multilabel_f1"},
    {"name": "genre_coherence@3", "kind": "neighbour_coherence", "k": 3},
    {"name": "interaction_auc", "kind": "interaction_auc", "test_fraction": 0.5},
    {"name": "related_auc", "kind": "relation_auc", "relation": "related"},
    {"name": "complement_auc", "kind": "relation_auc",
     "relation": "complement"},
    # Every synthetic user has every item, so there is no sampled ranking:
    # `offline_eval.probes_test` covers it.
]
SEEDS = [0, 1]
# The synthetic rows' users are "0", "1", ..., one per row of an item.
NUM_USERS = ROWS_PER_ITEM
# The last items are in the eval split only: no model trained on them.
HELD_OUT_ITEMS = [str(item) for item in range(NUM_ITEMS - 4, NUM_ITEMS)]


def _write_train_examples(split_dir: str) -> None:
  """The synthetic rows of every item but `HELD_OUT_ITEMS`."""
  tf.io.gfile.makedirs(split_dir)
  with tf.io.TFRecordWriter(os.path.join(split_dir, "part-0.tfrecord.gz"),
                            options="GZIP") as writer:
    for row in synthetic_rows():
      if row[features.ITEM_ID] not in HELD_OUT_ITEMS:
        writer.write(interaction_example_beam.to_tf_example(row)
                     .SerializeToString())


def _write_dataset(directory: str) -> None:
  """Side tables of the synthetic examples of `index_builder_test`.

  Every user rated the held-out items (alternately liked) after their eval
  example, two trained-on items, and one held-out item before their eval
  example: only the first are probe pairs.
  """
  rated = HELD_OUT_ITEMS + ["0", "1"]
  interactions = pd.DataFrame({
      "user_id": [str(u) for u in range(NUM_USERS) for _ in rated] +
                 [str(u) for u in range(NUM_USERS)],
      "item_id": rated * NUM_USERS + [HELD_OUT_ITEMS[0]] * NUM_USERS,
      "timestamp": [2_000_000] * (len(rated) * NUM_USERS) + [1] * NUM_USERS,
      "label": [float(i % 2) for i in range(len(rated))] * NUM_USERS +
               [1.0] * NUM_USERS,
  })
  items = pd.DataFrame({
      "item_id": [str(i) for i in range(NUM_ITEMS)],
      "related_items": [str((i + 1) % NUM_ITEMS) for i in range(NUM_ITEMS)],
      "complement_items": [str((i + 2) % NUM_ITEMS) if i % 2 else ""
                           for i in range(NUM_ITEMS)],
  })
  users = pd.DataFrame({
      "user_id": [str(u) for u in range(NUM_USERS)],
      "occupation": ["artist", "doctor", "artist"][:NUM_USERS],
  })
  contract.write_dataset(contract.Dataset(
      interactions=contract.normalize_interactions(interactions),
      items=contract.normalize_items(items),
      users=contract.normalize_users(users)), directory)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("embedding_benchmark"))
  _write_train_examples(os.path.join(root, "examples", "Split-train"))
  write_examples(os.path.join(root, "examples", "Split-eval"))
  _write_dataset(os.path.join(root, "dataset"))
  return root


def _inputs(root: str) -> embedding_benchmark.BenchmarkInputs:
  return embedding_benchmark.load_inputs(
      os.path.join(root, "examples", "Split-train"),
      os.path.join(root, "examples", "Split-eval"),
      contract.load_dataset(os.path.join(root, "dataset")))


def test_inputs_index_users_items_and_side_tables(root):
  inputs = _inputs(root)
  assert len(inputs.user_ids) == NUM_USERS
  assert len(inputs.item_ids) == NUM_ITEMS + 1 and inputs.item_ids[0] == ""
  data = inputs.task_data
  assert list(data.user_attributes["occupation"][:2]) == ["artist", "doctor"]
  # The probe pairs are the held-out items rated after each eval example.
  probed = data.interactions
  assert sorted(zip(probed["user_index"], inputs.item_ids[probed["item_index"]])
                ) == [(user, item) for user in range(NUM_USERS)
                      for item in HELD_OUT_ITEMS]
  assert list(probed["label"][:4]) == [0, 1, 0, 1]
  assert len(data.item_relations["related"]) == NUM_ITEMS
  np.testing.assert_array_equal(
      inputs.item_ids[data.item_relations["complement"]].astype(int),
      [[i, (i + 2) % NUM_ITEMS] for i in range(1, NUM_ITEMS, 2)])
  assert len(data.item_relations["substitute"]) == 0
  assert data.item_labels.shape == (NUM_ITEMS + 1, 2)


def test_multi_vector_model_is_scored_by_its_best_vector(root, tmp_path):
  model = TinyMultiVectorModel()
  write_tiny_model(str(tmp_path / "model"), model)
  inputs = _inputs(root)
  embeddings = embedding_benchmark.embed(str(tmp_path / "model"), inputs)
  order = np.array([int(u) for u in inputs.user_ids])
  np.testing.assert_allclose(embeddings.users, model.user_vectors()[order],
                             rtol=1e-6)
  np.testing.assert_allclose(embeddings.items[0], 0.0)
  write_tiny_model(str(tmp_path / "single"))
  result = embedding_benchmark.run_benchmark(
      {"multi": str(tmp_path / "model"), "single": str(tmp_path / "single"),
       "multi_again": str(tmp_path / "model")}, inputs,
      [probes.TaskSpec.from_dict(t) for t in TASKS], SEEDS)
  assert result["user_vectors_per_user"] == {"multi": 2, "single": 1,
                                             "multi_again": 2}
  assert list(result["metrics"]) == ["multi", "single", "multi_again",
                                     "random", "most_popular"]
  assert set(result["metrics"]["most_popular"]) == {"recall@5"}
  # Every row sees the same probe splits: the same model scores the same.
  assert result["metrics"]["multi"] == result["metrics"]["multi_again"]
  assert result["metrics"]["multi"] != result["metrics"]["single"]


def test_component_writes_json_and_html_reports(root):
  write_tiny_model(os.path.join(root, "model", "Format-Serving"),
                   TinyMultiVectorModel())
  write_tiny_model(os.path.join(root, "baseline", "Format-Serving"))
  with open(os.path.join(root, "baseline", trainer_lib.MODEL_INFO_FILE),
            "w") as info:
    json.dump({families.LABEL_KEY: "two_tower"}, info)
  model, baseline = import_model(root), import_model(root, "baseline")
  examples = import_examples(root)
  benchmark = embedding_benchmark.EmbeddingBenchmark(
      model=model.outputs["result"], examples=examples.outputs["result"],
      baseline_models=channel_utils.union([baseline.outputs["result"]]),
      dataset_dir=os.path.join(root, "dataset"), tasks_json=json.dumps(TASKS),
      seeds_json=json.dumps(SEEDS))
  run_local_pipeline(root, "embedding-benchmark-test",
                     [model, baseline, examples, benchmark])

  (report_dir,) = glob.glob(os.path.join(root, "pipeline", "EmbeddingBenchmark",
                                         "report", "*"))
  with open(os.path.join(report_dir, embedding_benchmark.REPORT_JSON)) as f:
    report = json.load(f)
  assert report["seeds"] == SEEDS
  assert list(report["metrics"]) == ["model", "two_tower", "random",
                                     "most_popular"]
  assert report["user_vectors_per_user"] == {"model": 2, "two_tower": 1}
  model_metrics = report["metrics"]["model"]
  assert set(model_metrics) == {task["name"] for task in TASKS}
  assert len(model_metrics["genre_f1"]["values"]) == len(SEEDS)
  with open(os.path.join(report_dir, embedding_benchmark.REPORT_HTML)) as f:
    page = f.read()
  assert "<table" in page and "genre_coherence@3" in page
  assert "<th>two_tower</th>" in page
  table = embedding_benchmark.markdown_report(
      embedding_benchmark.read_report(report_dir)).splitlines()
  assert table[0].split(" | ")[:2] == ["| model", "recall@5"]
  assert [line.split(" | ")[0] for line in table[2:]] == [
      "| model", "| two_tower", "| random", "| most_popular"]
  assert table[-1].endswith("| – | – | – | – | – | – |")


def test_markdown_report_has_a_column_per_metric_of_multi_metric_tasks():
  result = {"metrics": {
      "model": {"recall@5": {"mean": 0.5, "std": 0.0},
                "rechorus/hr@5": {"mean": 0.25, "std": 0.01}},
      "random": {"recall@5": {"mean": 0.1, "std": 0.02},
                 "genre_f1": {"mean": 0.3, "std": 0.0}}}}
  assert embedding_benchmark.markdown_report(result).splitlines() == [
      "| model | recall@5 | rechorus/hr@5 | genre_f1 |",
      "|---|---|---|---|",
      "| model | 0.5000 ± 0.0000 | 0.2500 ± 0.0100 | – |",
      "| random | 0.1000 ± 0.0200 | – | 0.3000 ± 0.0000 |"]


def test_tasks_come_from_config_or_a_preset():
  assert embedding_benchmark.tasks_for("contract", TASKS) == TASKS
  assert embedding_benchmark.tasks_for("movielens-100k", [])[0]["kind"] == (
      "next_item")
  with pytest.raises(ValueError, match="declare them"):
    embedding_benchmark.tasks_for("contract", [])


def test_pipeline_runs_the_benchmark_on_the_trainer_model_when_enabled(
    tmp_path):
  # Imported here: the pipeline module imports every component.
  from tfx_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import pipeline  # pylint: disable=g-import-not-at-top

  def components(benchmark=None, **overrides):
    config = config_lib.PipelineConfig(workspace=str(tmp_path), **overrides)
    for key, value in (benchmark or {}).items():
      setattr(config.embedding_benchmark, key, value)
    return {c.id: c for c in pipeline.create_pipeline(config).components}

  assert "EmbeddingBenchmark" not in components()
  enabled = components({"enabled": True}, model_family="guim",
                       hparams={"epochs": 2, "num_interests": 4})
  benchmark = enabled["EmbeddingBenchmark"]
  assert json.loads(benchmark.exec_properties["tasks_json"]) == (
      probes.DATASET_TASKS["movielens-100k"])
  assert benchmark.inputs["model"].producer_component_id == "Trainer"
  # Baselines get the run's hparams their family knows, then their own.
  def baseline_config(label):
    return json.loads(enabled[f"BaselineTrainer_{label}"].exec_properties[
        "custom_config"])
  assert baseline_config("two_tower") == {
      "model_family": "two_tower", "hparams": {"epochs": 2},
      "label": "two_tower", "seed": 0, "history_length": 50}
  assert baseline_config("guim_k1")["hparams"] == {"epochs": 2,
                                                   "num_interests": 1}
  assert {channel.producer_component_id for channel in
          benchmark.inputs["baseline_models"].channels} == {
              "BaselineTrainer_two_tower", "BaselineTrainer_guim_k1"}
  # A baseline equal to the run's own model is not trained twice.
  assert "BaselineTrainer_two_tower" not in components(
      {"enabled": True}, model_family="two_tower")
  with pytest.raises(ValueError, match="'ranking' is not a retrieval family"):
    components({"enabled": True,
                "baselines": {"x": {"model_family": "ranking"}}})


# User "2" never trained on these items; the others did.
UNSEEN_BY_USER_2 = [str(item) for item in range(30, 34)]


def _write_taobao_like(root: str) -> None:
  """Train examples without `UNSEEN_BY_USER_2` for user "2", and a pv/buy
  log after every eval example: each user views the held-out items and buys
  every other one; user "2" also views `UNSEEN_BY_USER_2` in one session."""
  split_dir = os.path.join(root, "taobao_train")
  tf.io.gfile.makedirs(split_dir)
  with tf.io.TFRecordWriter(os.path.join(split_dir, "part-0.tfrecord.gz"),
                            options="GZIP") as writer:
    for row in synthetic_rows():
      if row[features.ITEM_ID] not in HELD_OUT_ITEMS and not (
          row[features.USER_ID] == "2" and
          row[features.ITEM_ID] in UNSEEN_BY_USER_2):
        writer.write(interaction_example_beam.to_tf_example(row)
                     .SerializeToString())
  events = [(str(user), item, 2_000_000 + 10 * index, event)
            for user in range(NUM_USERS)
            for index, item in enumerate(HELD_OUT_ITEMS)
            for event in ["pv"] + ["buy"] * (index % 2)]
  events += [("2", item, 3_000_000 + 60 * index, "pv")
             for index, item in enumerate(UNSEEN_BY_USER_2)]
  contract.write_dataset(contract.Dataset(
      interactions=contract.normalize_interactions(pd.DataFrame(
          events, columns=["user_id", "item_id", "timestamp", "event"]))),
                         os.path.join(root, "taobao_dataset"))


def test_taobao_tasks_run_on_the_held_out_behaviour_events(root, tmp_path):
  _write_taobao_like(root)
  inputs = embedding_benchmark.load_inputs(
      os.path.join(root, "taobao_train"),
      os.path.join(root, "examples", "Split-eval"),
      contract.load_dataset(os.path.join(root, "taobao_dataset")))
  data = inputs.task_data
  pairs = probes.behaviour_pairs.conversion_pairs(data.held_out_events,
                                                  data.known_items)
  # Every user's views of the held-out items, bought every other one, and
  # user 2's views of the items it never trained on.
  assert sorted(zip(pairs["user_index"], inputs.item_ids[pairs["item_index"]],
                    pairs["label"])) == sorted(
                        [(user, item, index % 2) for user in range(NUM_USERS)
                         for index, item in enumerate(HELD_OUT_ITEMS)] +
                        [(2, item, 0) for item in UNSEEN_BY_USER_2])
  # The same-session relation joins user 2's consecutive trained items.
  np.testing.assert_array_equal(
      inputs.item_ids[data.item_relations[probes.SAME_SESSION_RELATION]],
      [["30", "31"], ["31", "32"], ["32", "33"]])
  # The Taobao preset, on three users; the synthetic items' first category
  # is one class, so no item class probe.
  tasks = [dict(task, test_fraction=0.34) for task in probes.TAOBAO_TASKS
           if task["kind"] != "item_class_f1"]
  write_tiny_model(str(tmp_path / "model"), TinyMultiVectorModel())
  result = embedding_benchmark.run_benchmark(
      {"guim": str(tmp_path / "model")}, inputs,
      [probes.TaskSpec.from_dict(task) for task in tasks], seeds=[0])
  assert set(result["metrics"]["guim"]) == {task["name"] for task in tasks}
  assert set(result["metrics"]["most_popular"]) == {
      "next_item_recall@50", "next_category_recall@10"}
  for stats in result["metrics"]["guim"].values():
    assert 0.0 <= stats["mean"] <= 1.0


def test_a_task_with_one_held_out_class_is_reported_not_scored(root, tmp_path):
  """Leave-last-out leaves few held-out events: here views, no purchase."""
  _write_taobao_like(root)
  dataset = contract.load_dataset(os.path.join(root, "taobao_dataset"))
  views_only = dataset.interactions[dataset.interactions["event"] == "pv"]
  inputs = embedding_benchmark.load_inputs(
      os.path.join(root, "taobao_train"),
      os.path.join(root, "examples", "Split-eval"),
      dataclasses.replace(dataset, interactions=views_only))
  tasks = [probes.TaskSpec.from_dict(dict(task, test_fraction=0.34))
           for task in probes.TAOBAO_TASKS
           if task["name"] in ("purchase_auc", "next_item_recall@50")]
  write_tiny_model(str(tmp_path / "model"), TinyMultiVectorModel())
  result = embedding_benchmark.run_benchmark(
      {"guim": str(tmp_path / "model")}, inputs, tasks, seeds=[0, 1])
  assert set(result["metrics"]["guim"]) == {"next_item_recall@50"}
  assert list(result["not_scored"]) == ["purchase_auc"]
  assert "classes [0]" in result["not_scored"]["purchase_auc"]
  assert "not scored: purchase_auc" in embedding_benchmark.markdown_report(
      result)
  assert "purchase_auc" in embedding_benchmark.report_html(result)
  # Outside the component, the task still raises.
  with pytest.raises(linear_probes.OneClassError):
    probes.run_tasks(tasks, inputs.task_data,
                     embedding_benchmark.embed(str(tmp_path / "model"), inputs),
                     seed=0)
