"""Tests for the SEMINAR benchmark inputs and models."""

import numpy as np
import pytest

from benchmarks import seminar_data
from benchmarks import sequential_test
from models.seminar import model as seminar


@pytest.mark.parametrize("prior", [True, False])
def test_seminar_retrievers_start_ranking_items_by_popularity(prior):
  dataset = sequential_test.tiny_dataset()
  config = seminar.SeminarConfig(
      embedding_dim=4, num_heads=1, top_k=2, use_queries=False,
      use_text=False)
  _, retriever = seminar_data.build_seminar_models(dataset, config, prior)
  bias = retriever.item_bias(np.arange(dataset.num_items)).numpy()[:, 0]
  # Train counts: item 1 twice; 2, 3 and 4 once; 5, 6 and padding never.
  if prior:
    assert bias[1] > bias[2] == bias[3] == bias[4] > bias[5] == bias[6]
  else:
    np.testing.assert_array_equal(bias, 0.0)
