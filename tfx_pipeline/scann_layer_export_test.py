"""Tests for the ScaNN-layer model; the Beam job's own copy of it is checked
in `index_builder_test`."""

import numpy as np
import tensorflow as tf

from models import serving_names
from tfx_pipeline import index_builder_test
from tfx_pipeline import scann_layer_export


def test_scann_layer_model_merges_the_vectors_of_multi_vector_users(tmp_path):
  model = index_builder_test.write_tiny_model(str(tmp_path / "model"), index_builder_test.TinyMultiVectorModel())
  item_ids = [str(i) for i in range(index_builder_test.NUM_ITEMS)]
  item_table = model.item_table.numpy()
  scann_layer_export.export_scann_layer_model(
      str(tmp_path / "model"), item_table, item_ids,
      index_builder_test.PARAMS.fitted_to(index_builder_test.NUM_ITEMS), str(tmp_path / "scann_layer"))
  import scann  # pylint: disable=g-import-not-at-top,unused-import
  retrieve = tf.saved_model.load(
      str(tmp_path / "scann_layer")).signatures[serving_names.DEFAULT]

  outputs = retrieve(user_id=tf.constant(["0", "3"]),
                     history_item_ids=tf.constant([[""], [""]]),
                     timestamp=tf.zeros([2], tf.int64))

  found = outputs[serving_names.ITEM_IDS].numpy().astype(str)
  exact = (model.user_vectors()[[0, 3]] @ item_table.T).max(axis=1)
  expected = np.argsort(-exact, axis=1)[:, :index_builder_test.TOP_K].astype(str)
  assert found.shape == (2, index_builder_test.TOP_K)
  assert all(len(set(row)) == index_builder_test.TOP_K for row in found)
  assert np.mean([len(set(f) & set(e)) / index_builder_test.TOP_K
                  for f, e in zip(found, expected)]) >= 0.9
  np.testing.assert_array_less(
      np.diff(outputs[serving_names.SCORES].numpy(), axis=1), 1e-5)
