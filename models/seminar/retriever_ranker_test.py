"""Tests for SEMINAR's retriever as a CTR ranker."""

import numpy as np
import tensorflow as tf

from models.seminar import ctr_ranker
from models.seminar import model_test
from models.seminar import retriever_ranker


def test_logits_are_the_retrievers_scores_and_a_step_trains_the_encoder():
  _, retriever = model_test.small_models()
  ranker = retriever_ranker.RetrieverRanker(retriever)
  history = model_test.small_batch()
  candidates = tf.constant([7, 1, 11], tf.int64)
  batch = {ctr_ranker.HISTORY: history["items"],
           ctr_ranker.KEYWORDS: history["keywords"],
           ctr_ranker.CANDIDATE: candidates,
           ctr_ranker.LABEL: tf.constant([1., 0., 1.])}
  expected = retriever.score(history["items"], history["keywords"],
                             candidates[:, tf.newaxis])[:, 0].numpy()
  np.testing.assert_allclose(ranker.logits(batch).numpy(), expected,
                             rtol=1e-6)
  before = retriever.encoder.id_embedding.get_weights()[0].copy()
  ranker.compile(optimizer=tf.keras.optimizers.Adam(0.01))
  ranker.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
  assert not np.allclose(before,
                         retriever.encoder.id_embedding.get_weights()[0])
