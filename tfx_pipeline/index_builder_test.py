"""Tests for the Beam ScaNN index job, on a tiny synthetic retrieval model."""

from __future__ import annotations

import os
from typing import Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx

from data import features
from models import serving_names
from serving import scann_index
from tfx_pipeline.components import interaction_example_beam
from tfx_pipeline import index_builder

NUM_ITEMS = 40
NUM_USERS = 6
DIMENSION = 8
ROWS_PER_ITEM = 3
TOP_K = 10
PARAMS = scann_index.ScannParams(default_k=TOP_K)


def _unit_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
  table = rng.normal(size=(rows, DIMENSION)).astype(np.float32)
  return table / np.linalg.norm(table, axis=1, keepdims=True)


class TinyRetrievalModel(tf.Module):
  """Embeds ids "0", "1", ... by table lookup, with the real signatures."""

  def __init__(self, seed: int = 0):
    super().__init__()
    rng = np.random.default_rng(seed)
    self.item_table = tf.Variable(_unit_rows(rng, NUM_ITEMS))
    self.user_table = tf.Variable(_unit_rows(rng, NUM_USERS))

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name=features.ITEM_ID),
      tf.TensorSpec([None], tf.string, name=features.ITEM_TITLE),
      tf.TensorSpec([None, None], tf.string, name=features.ITEM_CATEGORIES),
  ))
  def candidate_embedding(self, item_id, item_title, item_categories):
    del item_title, item_categories  # The tiny model embeds the id only.
    index = tf.strings.to_number(item_id, tf.int32)
    return {serving_names.EMBEDDING: tf.gather(self.item_table, index)}

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name=features.USER_ID),
      tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
      tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
  ))
  def query_embedding(self, user_id, history_item_ids, timestamp):
    del history_item_ids, timestamp  # The tiny model embeds the user only.
    index = tf.strings.to_number(user_id, tf.int32)
    return {serving_names.EMBEDDING: tf.gather(self.user_table, index)}


class TinyMultiVectorModel(TinyRetrievalModel):
  """Embeds user u as two vectors: user rows u and u + 1 (mod users)."""

  @tf.function(input_signature=(
      tf.TensorSpec([None], tf.string, name=features.USER_ID),
      tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
      tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
  ))
  def query_embedding(self, user_id, history_item_ids, timestamp):
    del history_item_ids, timestamp  # The tiny model embeds the user only.
    index = tf.strings.to_number(user_id, tf.int32)
    rows = tf.stack([index, (index + 1) % NUM_USERS], axis=1)
    return {serving_names.EMBEDDING: tf.gather(self.user_table, rows)}

  def user_vectors(self) -> np.ndarray:
    """`[users, 2, dim]`: what `query_embedding` returns for every user."""
    table = self.user_table.numpy()
    return np.stack([table, np.roll(table, -1, axis=0)], axis=1)


def write_tiny_model(export_dir: str,
                     model: Optional[TinyRetrievalModel] = None
                     ) -> TinyRetrievalModel:
  model = model or TinyRetrievalModel()
  tf.saved_model.save(model, export_dir, signatures={
      serving_names.CANDIDATE_EMBEDDING:
          model.candidate_embedding.get_concrete_function(),
      serving_names.QUERY_EMBEDDING:
          model.query_embedding.get_concrete_function(),
  })
  return model


def synthetic_rows() -> list[dict]:
  """`ROWS_PER_ITEM` interactions per item, with 0 to 2 categories each."""
  categories = ["Drama", "Comedy"]
  return [{
      features.USER_ID: str(row % NUM_USERS),
      features.ITEM_ID: str(item),
      features.ITEM_TITLE: f"Title {item}",
      features.ITEM_CATEGORIES: categories[:item % 3],
      features.HISTORY_ITEM_IDS: [str((item + 1) % NUM_ITEMS)],
      features.TIMESTAMP: 1_000_000 + row,
  } for item in range(NUM_ITEMS) for row in range(ROWS_PER_ITEM)]


def write_examples(split_dir: str) -> None:
  """Writes the synthetic rows as two gzip TFRecord files."""
  rows = synthetic_rows()
  half = len(rows) // 2
  for part, part_rows in enumerate((rows[:half], rows[half:])):
    path = os.path.join(split_dir, f"part-{part}.tfrecord.gz")
    tf.io.gfile.makedirs(split_dir)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for row in part_rows:
        writer.write(interaction_example_beam.to_tf_example(row)
                     .SerializeToString())


def import_model(root: str, model_dir: str = "model") -> tfx.dsl.Importer:
  """An Importer of `root/<model_dir>` as a Model artifact."""
  return tfx.dsl.Importer(
      source_uri=os.path.join(root, model_dir),
      artifact_type=tfx.types.standard_artifacts.Model).with_id(
          f"import_{model_dir}")


def import_examples(root: str) -> tfx.dsl.Importer:
  """An Importer of `root/examples` (train and eval splits) as Examples."""
  return tfx.dsl.Importer(
      source_uri=os.path.join(root, "examples"),
      artifact_type=tfx.types.standard_artifacts.Examples,
      properties={"split_names": '["train", "eval"]'}).with_id(
          "import_examples")


def run_local_pipeline(root: str, name: str, components) -> None:
  """Runs `components` with LocalDagRunner, SQLite MLMD and Beam in memory."""
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name=name,
      pipeline_root=os.path.join(root, "pipeline"),
      components=components,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              os.path.join(root, "metadata.sqlite"))),
      beam_pipeline_args=["--runner=DirectRunner",
                          "--direct_running_mode=in_memory"]))


def recall(found_ids: np.ndarray, queries: np.ndarray,
           item_table: np.ndarray) -> float:
  exact = np.argsort(-(queries @ item_table.T), axis=1)[:, :TOP_K]
  return np.mean([len({str(i) for i in e} & {str(f) for f in found}) / TOP_K
                  for found, e in zip(found_ids, exact)])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Runs the job once; tests read its outputs."""
  root = tmp_path_factory.mktemp("index_job")
  model = write_tiny_model(str(root / "model"))
  write_examples(str(root / "examples"))
  job = index_builder.IndexJob(
      model_dir=str(root / "model"),
      examples_pattern=str(root / "examples" / "*.tfrecord.gz"),
      indexed_model_dir=str(root / "indexed"),
      scann_layer_model_dir=str(root / "scann_layer"),
      params=PARAMS, batch_size=16)
  pipeline = beam.Pipeline(options=PipelineOptions(
      ["--runner=DirectRunner", "--direct_running_mode=in_memory"]))
  result = index_builder.run(pipeline, job)
  return job, result, model


def test_each_distinct_item_is_embedded_once(built):
  job, result, _ = built
  assert index_builder.items_embedded(result) == NUM_ITEMS
  index = scann_index.ScannIndex.load(job.indexed_model_dir)
  assert sorted(index.item_ids, key=int) == [str(i) for i in range(NUM_ITEMS)]


def test_index_returns_brute_force_top_k(built):
  job, _, model = built
  index = scann_index.ScannIndex.load(job.indexed_model_dir)
  queries = model.user_table.numpy()
  found, _ = index.search(queries, k=TOP_K)
  assert recall(found, queries, model.item_table.numpy()) >= 0.9


def test_indexed_model_is_the_input_model_plus_index(built):
  job, _, _ = built
  original = tf.saved_model.load(job.model_dir)
  indexed = tf.saved_model.load(job.indexed_model_dir)
  assert set(indexed.signatures) == set(original.signatures)
  inputs = index_builder.candidate_inputs(
      [index_builder.Item("3", "Title 3", ())])
  np.testing.assert_array_equal(
      indexed.signatures[serving_names.CANDIDATE_EMBEDDING](**inputs)[
          serving_names.EMBEDDING],
      original.signatures[serving_names.CANDIDATE_EMBEDDING](**inputs)[
          serving_names.EMBEDDING])
  assert scann_index.has_index(job.indexed_model_dir)
  assert not scann_index.has_index(job.model_dir)


def test_scann_layer_model_returns_top_k_ids(built):
  job, _, model = built
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  retrieve = tf.saved_model.load(
      job.scann_layer_model_dir).signatures[serving_names.DEFAULT]
  user_ids = [str(u) for u in range(NUM_USERS)]
  outputs = retrieve(
      user_id=tf.constant(user_ids),
      history_item_ids=tf.constant([[""]] * NUM_USERS),
      timestamp=tf.zeros([NUM_USERS], tf.int64))
  found = outputs[serving_names.ITEM_IDS].numpy().astype(str)
  assert found.shape == (NUM_USERS, TOP_K)
  assert outputs[serving_names.SCORES].shape == (NUM_USERS, TOP_K)
  assert recall(found, model.user_table.numpy(),
                model.item_table.numpy()) >= 0.9


def test_a_stale_index_in_the_input_model_is_replaced(tmp_path):
  write_tiny_model(str(tmp_path / "model"))
  stale = tmp_path / "model" / scann_index.INDEX_SUBDIR / "stale.txt"
  stale.parent.mkdir(parents=True)
  stale.write_text("old")
  # ScaNN's hashing needs at least 16 items.
  item_ids = [f"new_{i}" for i in range(20)]
  embeddings = _unit_rows(np.random.default_rng(1), len(item_ids))
  index = scann_index.ScannIndex.build(embeddings, item_ids, PARAMS)
  index_builder.write_indexed_model(str(tmp_path / "model"), index,
                                    str(tmp_path / "indexed"))
  assert not (tmp_path / "indexed" / scann_index.INDEX_SUBDIR /
              "stale.txt").exists()
  loaded = scann_index.ScannIndex.load(str(tmp_path / "indexed"))
  assert list(loaded.item_ids) == item_ids


def test_categories_are_padded_with_empty_strings():
  inputs = index_builder.candidate_inputs([
      index_builder.Item("1", "a", ("x", "y")),
      index_builder.Item("2", "b", ())])
  np.testing.assert_array_equal(
      inputs[features.ITEM_CATEGORIES].numpy().astype(str),
      [["x", "y"], ["", ""]])


def test_unknown_flags_go_to_beam():
  job, beam_args = index_builder._parse_args([
      "--model_dir=m", "--examples=e/*", "--output_dir=o", "--num_leaves=7",
      "--runner=FlinkRunner", "--parallelism=4"])
  assert job.params.num_leaves == 7
  assert job.indexed_model_dir == "o"
  assert beam_args == ["--runner=FlinkRunner", "--parallelism=4"]


def test_a_per_user_train_example_names_every_row_s_item():
  serialized = interaction_example_beam.to_tf_example({
      features.ITEM_ID: "c", features.ITEM_TITLE: "Title C",
      features.ITEM_CATEGORIES: ["x"],
      features.HISTORY_ITEM_IDS: ["a", "b"],
      features.HISTORY_ITEM_TITLES: ["Title A", "Title B"],
      features.HISTORY_ITEM_CATEGORIES: ["x|y", ""],
      features.NEGATIVE_ITEM_IDS: ["n1", "n2", "n3"],
      features.NEGATIVE_ITEM_TITLES: ["N1", "N2", "N3"],
      features.NEGATIVE_ITEM_CATEGORIES: ["", "z", "x|z"],
  }).SerializeToString()
  assert index_builder.parse_items(serialized) == [
      index_builder.Item("a", "Title A", ("x", "y")),
      index_builder.Item("b", "Title B", ()),
      index_builder.Item("c", "Title C", ("x",)),
      index_builder.Item("n1", "N1", ()),
      index_builder.Item("n2", "N2", ("z",)),
      index_builder.Item("n3", "N3", ("x", "z"))]


def test_an_eval_row_names_its_own_item_only():
  serialized = interaction_example_beam.to_tf_example({
      features.ITEM_ID: "c", features.ITEM_TITLE: "Title C",
      features.ITEM_CATEGORIES: [], features.HISTORY_ITEM_IDS: ["a", "b"],
  }).SerializeToString()
  assert index_builder.parse_items(serialized) == [
      index_builder.Item("c", "Title C", ())]
