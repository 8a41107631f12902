"""EmbeddingBenchmark: probe tasks on a trained model's frozen embeddings.

Reads the Trainer's model through its raw-feature signatures
(`query_embedding`, which may return `[batch, dim]` or, for multi-vector
models such as GUIM, `[batch, K, dim]`, and `candidate_embedding`), the
ExampleGen examples and the dataset's contract tables (`items.*`, `users.*`,
`interactions.*` in `dataset_dir`), and runs the tasks of
`offline_eval.probes` declared in the pipeline config. Baseline models
(other Trainers of the same run, e.g. the single-vector two-tower and GUIM
with K=1) are scored on the same users, items and probe splits; each row is
named by the label its Trainer recorded (`models.trainer.read_model_info`).
Random embeddings of the main model's shape are scored in the same run as the
floor, and the most-popular scorer on the ranking tasks.

Data the tasks see:
- users: every user with an eval example; their vector is the model's query
  for that example (history = the train items before it), and the example's
  item is their next item; all their train items are excluded from ranking.
- items: every item of the examples (train and eval), embedded from the
  item features of the examples; labels are their categories.
- user attributes: the columns of `users.*`; interaction labels: the rows of
  `interactions.*` no model trained on (`held_out_interactions`), whose
  `event`s are also the held-out events of the purchase probe
  (`conversion_auc`) and the same-session relation between items with a
  train positive (`offline_eval.behaviour_pairs`); item relations: the
  `items` list columns of `RELATION_COLUMNS` (the pipeline's item features
  are the title and categories, never these lists).

Writes `report.json` (per-seed and aggregated metrics) and `report.html` (the
table) into the output artifact.
"""

# No `from __future__ import annotations`: the @component decorator reads the
# parameter annotations as types.
import dataclasses
import html
import json
import os
from typing import List, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact
from tfx.types import artifact_utils
from tfx.utils import path_utils

from data import contract
from data import features
from data import user_sequences
from models import families
from models import serving_names
from models import trainer as trainer_lib
from offline_eval import behaviour_pairs
from offline_eval import probes
from offline_eval import reporting
from tfx_pipeline import index_builder

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
DEFAULT_SEEDS = (0, 1, 2)
_BATCH_SIZE = 256
# `relation_auc` relation name -> the contract's `items` column of its pairs.
RELATION_COLUMNS = {"related": "related_items",
                    "complement": "complement_items",
                    "substitute": "substitute_items"}
RANDOM_ROW = "random"
MOST_POPULAR_ROW = "most_popular"


class EmbeddingBenchmarkReport(artifact.Artifact):
  """The benchmark's `report.json` and `report.html`."""
  TYPE_NAME = "EmbeddingBenchmarkReport"


@dataclasses.dataclass(frozen=True)
class BenchmarkInputs:
  """Everything the tasks need, indexed; item index 0 is padding.

  Attributes:
    user_ids: `[U]` raw ids.
    item_ids: `[num_items]` raw ids, "" at 0.
    query_inputs: `query_embedding` inputs, one row per user.
    items: the `candidate_embedding` inputs of item index 1, 2, ...
    task_data: the probe targets.
    train_counts: `[num_items]` train positives per item.
  """
  user_ids: np.ndarray
  item_ids: np.ndarray
  query_inputs: Mapping[str, np.ndarray]
  items: Sequence[index_builder.Item]
  task_data: probes.TaskData
  train_counts: np.ndarray


def _read_rows(split_dir: str) -> list[tf.train.Example]:
  # tf.io.gfile, so that a split in object storage (s3://) is found too.
  files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
  return [tf.train.Example.FromString(record.numpy()) for record in
          tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _value(example: tf.train.Example, name: str):
  feature = example.features.feature[name]
  if feature.int64_list.value:
    return feature.int64_list.value[0]
  return [value.decode("utf-8") for value in feature.bytes_list.value]


def _relation_pairs(items: pd.DataFrame | None, column: str,
                    item_index: Mapping[str, int]) -> np.ndarray:
  pairs = []
  if items is not None:
    for item_id, related in zip(items["item_id"], items[column]):
      if item_id in item_index:
        pairs.extend((item_index[item_id], item_index[other])
                     for other in related.split(contract.LIST_SEPARATOR)
                     if other in item_index)
  return np.asarray(pairs, np.int64).reshape(-1, 2)


def held_out_interactions(frame: pd.DataFrame, user_index: Mapping[str, int],
                          item_index: Mapping[str, int],
                          known: Mapping[str, set], cutoffs: Mapping[str, int]
                          ) -> pd.DataFrame:
  """The interaction probe's pairs: the rows no model trained on.

  A row is kept when its user and item are indexed, its item is not among
  the user's train items (`known`, item indices) and it is no older than the
  user's query (`cutoffs`, the timestamp of the example the user vector is
  built for): the user's held-out positives and the negatives of the same
  period.

  Returns:
    Columns `user_index`, `item_index`, `label` (1 for a positive), and the
    row's `event` and `timestamp`.
  """
  indexed = frame[frame["user_id"].isin(user_index) &
                  frame["item_id"].isin(item_index)]
  users = indexed["user_id"].map(user_index).to_numpy()
  items = indexed["item_id"].map(item_index).to_numpy()
  trained = np.array([item in known[user_id] for user_id, item
                      in zip(indexed["user_id"], items)], bool)
  recent = (indexed["timestamp"].to_numpy() >=
            indexed["user_id"].map(cutoffs).to_numpy())
  keep = ~trained & recent
  return pd.DataFrame({
      "user_index": users[keep], "item_index": items[keep],
      "label": (indexed["label"].to_numpy()[keep] >=
                user_sequences.POSITIVE_THRESHOLD).astype(int),
      "event": indexed["event"].to_numpy()[keep],
      "timestamp": indexed["timestamp"].to_numpy()[keep]})


def load_inputs(train_dir: str, eval_dir: str,
                dataset: contract.Dataset) -> BenchmarkInputs:
  """Indexes the examples' users and items and the dataset's side tables."""
  train_rows, eval_rows = _read_rows(train_dir), _read_rows(eval_dir)
  # The items of each train example's rows, parsed once for the catalogue
  # and the train counts.
  train_items = [index_builder.parse_items(row.SerializeToString())
                 for row in train_rows]
  catalogue: dict[str, index_builder.Item] = {}
  for items in train_items + [index_builder.parse_items(
      row.SerializeToString()) for row in eval_rows]:
    for item in items:
      catalogue.setdefault(item.item_id, item)
  item_ids = np.array([""] + sorted(catalogue), dtype=object)
  item_index = {item_id: index for index, item_id in enumerate(item_ids)
                if index}
  # A user's first eval example (the oldest held-out positive) is the task.
  first_eval = {}
  for row in sorted(eval_rows, key=lambda r: _value(r, features.TIMESTAMP)):
    first_eval.setdefault(_value(row, features.USER_ID)[0], row)
  user_ids = np.array(sorted(first_eval), dtype=object)
  user_index = {user_id: index for index, user_id in enumerate(user_ids)}
  known: dict[str, list[int]] = {user_id: [] for user_id in user_ids}
  train_counts = np.zeros(len(item_ids), np.float64)
  for row, items in zip(train_rows, train_items):
    for item in items:
      train_counts[item_index[item.item_id]] += 1
      known.get(_value(row, features.USER_ID)[0], []).append(
          item_index[item.item_id])
  cutoffs = {user_id: _value(first_eval[user_id], features.TIMESTAMP)
             for user_id in user_ids}
  histories = [_value(first_eval[u], features.HISTORY_ITEM_IDS)
               for u in user_ids]
  width = max(1, max(len(history) for history in histories))
  categories = sorted({c for item in catalogue.values() for c in item.categories})
  category_index = {name: index + 1 for index, name in enumerate(categories)}
  item_labels = np.zeros((len(item_ids), max(
      1, max(len(item.categories) for item in catalogue.values()))), np.int64)
  for item_id, index in item_index.items():
    labels = [category_index[c] for c in catalogue[item_id].categories]
    item_labels[index, :len(labels)] = labels

  interactions = None
  if dataset.interactions is not None:
    interactions = held_out_interactions(
        dataset.interactions, user_index, item_index,
        {user_id: set(items) for user_id, items in known.items()}, cutoffs)
  relations = {relation: _relation_pairs(dataset.items, column, item_index)
               for relation, column in RELATION_COLUMNS.items()}
  held_out_events = None
  if interactions is not None:
    held_out_events = interactions[list(behaviour_pairs.EVENT_COLUMNS)]
    relations[probes.SAME_SESSION_RELATION] = behaviour_pairs.session_pairs(
        held_out_events, items=train_counts > 0)
  users = None
  if dataset.users is not None:
    users = (dataset.users.drop_duplicates("user_id").set_index("user_id")
             .reindex(user_ids).reset_index(drop=True))
  return BenchmarkInputs(
      user_ids=user_ids,
      item_ids=item_ids,
      query_inputs={
          features.USER_ID: user_ids.astype(str),
          features.HISTORY_ITEM_IDS: np.array(
              [history + [""] * (width - len(history)) for history in histories],
              dtype=object).astype(str),
          features.TIMESTAMP: np.array(
              [_value(first_eval[u], features.TIMESTAMP) for u in user_ids],
              np.int64),
      },
      items=[catalogue[item_id] for item_id in item_ids[1:]],
      task_data=probes.TaskData(
          next_items=np.array([item_index[_value(first_eval[u],
                                                 features.ITEM_ID)[0]]
                               for u in user_ids]),
          known_items=[np.asarray(known[u], np.int64) for u in user_ids],
          catalogue=train_counts > 0,
          user_attributes=users,
          item_labels=item_labels,
          interactions=interactions,
          item_relations=relations,
          held_out_events=held_out_events),
      train_counts=train_counts)


def embed(model_dir: str, inputs: BenchmarkInputs) -> probes.Embeddings:
  """The model's user vectors (`[U, K, D]`) and item vectors (row 0 zeros)."""
  model = tf.saved_model.load(model_dir)
  query = model.signatures[serving_names.QUERY_EMBEDDING]
  candidate = model.signatures[serving_names.CANDIDATE_EMBEDDING]
  num_users = len(inputs.user_ids)
  users = np.concatenate([
      query(**{name: tf.constant(values[start:start + _BATCH_SIZE])
               for name, values in inputs.query_inputs.items()})[
                   serving_names.EMBEDDING].numpy()
      for start in range(0, num_users, _BATCH_SIZE)])
  items = np.concatenate([
      candidate(**index_builder.candidate_inputs(
          inputs.items[start:start + _BATCH_SIZE]))[serving_names.EMBEDDING].numpy()
      for start in range(0, len(inputs.items), _BATCH_SIZE)])
  if users.ndim == 2:
    users = users[:, np.newaxis]
  return probes.Embeddings(
      users=users, items=np.concatenate([np.zeros_like(items[:1]), items]))


def random_embeddings(like: probes.Embeddings, seed: int) -> probes.Embeddings:
  """Unit Gaussian vectors of the same shapes: the floor of every task."""
  rng = np.random.default_rng(seed)
  users = rng.normal(size=like.users.shape)
  items = rng.normal(size=like.items.shape)
  return probes.Embeddings(
      users=users / np.linalg.norm(users, axis=-1, keepdims=True),
      items=items / np.linalg.norm(items, axis=-1, keepdims=True))


def run_benchmark(model_dirs: Mapping[str, str], inputs: BenchmarkInputs,
                  specs: Sequence[probes.TaskSpec], seeds: Sequence[int],
                  user_pooling: str = "mean") -> dict:
  """Every task for every model and the floors, per seed and aggregated.

  Args:
    model_dirs: row label -> SavedModel directory; the first model's shape
      sets the random embeddings' shape.
    inputs: from `load_inputs`.
    specs: the tasks.
    seeds: probe seeds; each seed's split is the same for every row.
    user_pooling: how K user vectors enter user probes: "mean" or "concat".

  Returns:
    The report: tasks, seeds, sizes, `metrics[row][task]` aggregated over
    the seeds, and `not_scored[task]`: why a task the held-out data cannot
    score (its labels hold one class) has no metric.
  """
  embeddings = {label: embed(model_dir, inputs)
                for label, model_dir in model_dirs.items()}
  floor_shape = next(iter(embeddings.values()))
  runs: dict[str, list[dict[str, float]]] = {
      row: [] for row in [*embeddings, RANDOM_ROW, MOST_POPULAR_ROW]}
  not_scored: dict[str, str] = {}
  for seed in seeds:
    for label, vectors in embeddings.items():
      runs[label].append(probes.run_tasks(specs, inputs.task_data, vectors,
                                          seed, user_pooling, not_scored))
    runs[RANDOM_ROW].append(probes.run_tasks(
        specs, inputs.task_data, random_embeddings(floor_shape, seed), seed,
        user_pooling, not_scored))
    runs[MOST_POPULAR_ROW].append(probes.run_ranking_tasks(
        specs, inputs.task_data,
        lambda users: np.tile(inputs.train_counts, (len(users), 1)),
        len(inputs.item_ids), seed))
  # A task one seed's split could not score is left out of every seed.
  runs = {row: [{name: value for name, value in run.items()
                 if name not in not_scored} for run in values]
          for row, values in runs.items()}
  return {
      "tasks": [dataclasses.asdict(spec) for spec in specs],
      "seeds": list(seeds),
      "user_pooling": user_pooling,
      "num_users": len(inputs.user_ids),
      "num_items": len(inputs.item_ids) - 1,
      "user_vectors_per_user": {label: int(vectors.users.shape[1])
                                for label, vectors in embeddings.items()},
      "metrics": {row: reporting.aggregate_seeds(values)
                  for row, values in runs.items() if values[0]},
      # A task the held-out data cannot score (one class): its reason.
      "not_scored": not_scored,
  }


def metric_names(result: Mapping) -> list[str]:
  """Every metric of the report, in task order; a task may write several
  (`rechorus/hr@5`, `rechorus/ndcg@5`)."""
  return list(dict.fromkeys(name for metrics in result["metrics"].values()
                            for name in metrics))


def report_html(result: Mapping) -> str:
  """A standalone HTML table: one row per metric, one column per model."""
  rows = list(result["metrics"])
  names = metric_names(result)
  header = "".join(f"<th>{html.escape(row)}</th>" for row in rows)
  body = "".join(
      "<tr><td>" + html.escape(name) + "</td>" + "".join(
          "<td>" + (html.escape(reporting.format_mean_std(
              result["metrics"][row][name])) if name in result["metrics"][row]
                    else "–") + "</td>" for row in rows) + "</tr>"
      for name in names)
  vectors = ", ".join(f"{html.escape(label)}: {count}" for label, count in
                      result["user_vectors_per_user"].items())
  return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
          "<title>Embedding benchmark</title></head><body>"
          f"<h1>Embedding benchmark</h1><p>{result['num_users']} users, "
          f"{result['num_items']} items; vectors per user: {vectors}; "
          f"seeds {result['seeds']} (mean ± std).</p>"
          f"<table border='1'><tr><th>task</th>{header}</tr>{body}</table>"
          f"{_not_scored_html(result)}</body></html>")


def _not_scored_html(result: Mapping) -> str:
  items = "".join(f"<li>{html.escape(task)}: {html.escape(reason)}</li>"
                  for task, reason in result.get("not_scored", {}).items())
  return f"<p>Not scored:</p><ul>{items}</ul>" if items else ""


def markdown_report(result: Mapping) -> str:
  """The report as a Markdown table: one row per model, one column per metric."""
  names = metric_names(result)
  table = reporting.markdown_table(["model", *names], [
      [row] + [reporting.format_mean_std(metrics[name]) if name in metrics
               else "–" for name in names]
      for row, metrics in result["metrics"].items()])
  return table + "".join(f"\n- not scored: {task}: {reason}"
                         for task, reason in result.get("not_scored", {}).items())


def read_report(report_dir: str) -> dict:
  with tf.io.gfile.GFile(os.path.join(report_dir, REPORT_JSON)) as report:
    return json.load(report)


def write_report(result: Mapping, output_dir: str) -> None:
  tf.io.gfile.makedirs(output_dir)
  with tf.io.gfile.GFile(os.path.join(output_dir, REPORT_JSON), "w") as out:
    json.dump(result, out, indent=2)
  with tf.io.gfile.GFile(os.path.join(output_dir, REPORT_HTML), "w") as out:
    out.write(report_html(result))


def tasks_for(dataset: str, declared: Sequence[Mapping] | None) -> list[dict]:
  """The declared tasks, or the preset of a known dataset."""
  if declared:
    return [dict(task) for task in declared]
  if dataset not in probes.DATASET_TASKS:
    raise ValueError(f"no preset embedding benchmark tasks for {dataset!r}; "
                     "declare them in embedding_benchmark.tasks")
  return probes.DATASET_TASKS[dataset]


def model_label(model: artifact.Artifact, default: str) -> str:
  """The row label the model's Trainer recorded, else `default`."""
  return trainer_lib.read_model_info(model.uri).get(families.LABEL_KEY,
                                                     default)


@tfx.dsl.components.component
def EmbeddingBenchmark(  # pylint: disable=invalid-name
    model: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Examples],
    report: tfx.dsl.components.OutputArtifact[EmbeddingBenchmarkReport],
    dataset_dir: tfx.dsl.components.Parameter[str],
    tasks_json: tfx.dsl.components.Parameter[str],
    baseline_models: tfx.dsl.components.InputArtifact[
        List[tfx.types.standard_artifacts.Model]] = None,
    seeds_json: tfx.dsl.components.Parameter[str] = json.dumps(
        list(DEFAULT_SEEDS)),
    user_pooling: tfx.dsl.components.Parameter[str] = "mean",
) -> None:
  """Runs the declared probe tasks and writes the report.

  Args:
    model: the Trainer's model; needs `query_embedding` and
      `candidate_embedding` signatures.
    baseline_models: more models with the same signatures, scored in the
      same run (optional).
    examples: raw examples with `train` and `eval` splits.
    report: receives `report.json` and `report.html`.
    dataset_dir: the contract directory with the side tables.
    tasks_json: JSON list of task specs (`offline_eval.probes.TaskSpec`).
    seeds_json: JSON list of seeds; metrics are mean ± std over them.
    user_pooling: how K user vectors enter user probes: "mean" or "concat".
  """
  specs = [probes.TaskSpec.from_dict(task) for task in json.loads(tasks_json)]
  inputs = load_inputs(artifact_utils.get_split_uri([examples], "train"),
                       artifact_utils.get_split_uri([examples], "eval"),
                       contract.load_dataset(dataset_dir))
  model_dirs = {}
  for index, candidate in enumerate([model, *(baseline_models or [])]):
    label = model_label(candidate, "model" if index == 0 else f"baseline_{index}")
    if label in model_dirs:
      raise ValueError(f"two benchmarked models are labelled {label!r}")
    model_dirs[label] = path_utils.serving_model_path(candidate.uri)
  result = run_benchmark(model_dirs, inputs, specs, json.loads(seeds_json),
                         user_pooling)
  write_report(result, report.uri)
  print(f"EmbeddingBenchmark: {len(specs)} tasks on {result['num_users']} "
        f"users and {result['num_items']} items -> {report.uri}", flush=True)
