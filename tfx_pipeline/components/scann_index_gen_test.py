"""Runs ScannIndexGen in a tiny LocalDagRunner pipeline."""

import glob
import os

import tensorflow as tf

from models import serving_names
from serving import scann_index
from tfx_pipeline.components import scann_index_gen
from tfx_pipeline.index_builder_test import import_examples
from tfx_pipeline.index_builder_test import import_model
from tfx_pipeline.index_builder_test import NUM_ITEMS
from tfx_pipeline.index_builder_test import run_local_pipeline
from tfx_pipeline.index_builder_test import TOP_K
from tfx_pipeline.index_builder_test import write_examples
from tfx_pipeline.index_builder_test import write_tiny_model


def _only_output(root: str, key: str) -> str:
  (uri,) = glob.glob(os.path.join(root, "pipeline", "ScannIndexGen", key, "*"))
  return os.path.join(uri, "Format-Serving")


def test_component_writes_indexed_and_scann_layer_models(tmp_path):
  root = str(tmp_path)
  write_tiny_model(os.path.join(root, "model", "Format-Serving"))
  write_examples(os.path.join(root, "examples", "Split-train"))
  write_examples(os.path.join(root, "examples", "Split-eval"))

  model, examples = import_model(root), import_examples(root)
  index_gen = scann_index_gen.ScannIndexGen(
      model=model.outputs["result"], examples=examples.outputs["result"],
      default_k=TOP_K, batch_size=16)
  run_local_pipeline(root, "scann-index-gen-test", [model, examples, index_gen])

  indexed_dir = _only_output(root, "indexed_model")
  assert set(tf.saved_model.load(indexed_dir).signatures) == {
      serving_names.CANDIDATE_EMBEDDING, serving_names.QUERY_EMBEDDING}
  index = scann_index.ScannIndex.load(indexed_dir)
  assert len(index.item_ids) == NUM_ITEMS
  assert index.params.default_k == TOP_K
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  retrieve = tf.saved_model.load(
      _only_output(root, "scann_layer_model")).signatures[serving_names.DEFAULT]
  found = retrieve(user_id=tf.constant(["0"]),
                   history_item_ids=tf.constant([[""]]),
                   timestamp=tf.constant([0], tf.int64))[serving_names.ITEM_IDS]
  assert found.shape == (1, TOP_K)
