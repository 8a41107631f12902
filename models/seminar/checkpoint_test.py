"""Tests of the PSU's checkpoint and settings hand-over."""

import numpy as np
import pytest
import tensorflow as tf

from models.seminar import checkpoint as seminar_checkpoint
from models.seminar.model_test import ITEM_TOKENS
from models.seminar.model_test import NUM_TOKENS
from models.seminar.model_test import small_batch
from models.seminar.model_test import small_config
from models.seminar import psu as seminar_psu


def test_psu_export_restores_into_a_new_retriever(tmp_path):
  tf.keras.utils.set_random_seed(0)
  config = small_config()
  pretrainer, _ = seminar_psu.build_seminar(ITEM_TOKENS, NUM_TOKENS, config)
  # One forward pass creates the weights (random, unlike the new models').
  pretrainer.losses_of(small_batch())
  settings = {"embedding_dim": 8, "num_keywords": 1}
  seminar_checkpoint.save_psu(pretrainer, settings, str(tmp_path))
  assert seminar_checkpoint.read_psu_settings(str(tmp_path)) == settings
  new_pretrainer, retriever = seminar_psu.build_seminar(ITEM_TOKENS,
                                                        NUM_TOKENS, config)
  seminar_checkpoint.restore_psu(str(tmp_path), new_pretrainer, retriever)
  for restored, trained in ((retriever.encoder, pretrainer.encoder),
                            (retriever.attention, pretrainer.attention)):
    for got, want in zip(restored.get_weights(), trained.get_weights()):
      np.testing.assert_array_equal(got, want)


def test_fine_tuning_inherits_the_psu_settings_and_rejects_conflicts():
  settings = {"embedding_dim": 8, "image_vectors_path": ""}
  assert seminar_checkpoint.inherit_psu_settings({"epochs": 3}, settings) == {
      "epochs": 3, **settings}
  assert seminar_checkpoint.inherit_psu_settings(
      {"embedding_dim": 8}, settings) == settings
  with pytest.raises(ValueError, match="embedding_dim"):
    seminar_checkpoint.inherit_psu_settings({"embedding_dim": 16}, settings)
