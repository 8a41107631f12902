"""Tests for the synthetic dataset's determinism and planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data import contract
from data import synthetic


@pytest.fixture(scope="module")
def dataset() -> contract.Dataset:
  return synthetic.generate()


def _cluster_of_items(dataset: contract.Dataset) -> pd.Series:
  return dataset.items.set_index("item_id")["category"].str.removeprefix("cluster_")


def _preferred_cluster(dataset: contract.Dataset, interactions: pd.DataFrame) -> pd.Series:
  """The cluster each user interacts with most: the planted preference."""
  clusters = interactions["item_id"].map(_cluster_of_items(dataset))
  return clusters.groupby(interactions["user_id"]).agg(lambda values: values.mode().iloc[0])


def test_same_seed_same_data_other_seed_other_data(dataset):
  again = synthetic.generate()
  pd.testing.assert_frame_equal(dataset.interactions, again.interactions)
  pd.testing.assert_frame_equal(dataset.items, again.items)
  pd.testing.assert_frame_equal(dataset.users, again.users)
  assert not dataset.interactions.equals(synthetic.generate(seed=1).interactions)


def test_shape(dataset):
  assert len(dataset.items) == 300
  assert len(dataset.users) == 200
  per_user = dataset.interactions.groupby("user_id").size()
  assert len(per_user) == 200
  assert per_user.between(15, 40).all()
  assert list(dataset.interactions.columns) == list(contract.INTERACTION_COLUMNS)


def test_planted_cluster_preference_is_detectable(dataset):
  interactions = dataset.interactions
  preferred = interactions["user_id"].map(_preferred_cluster(dataset, interactions))
  in_cluster = interactions["item_id"].map(_cluster_of_items(dataset)) == preferred
  assert in_cluster.mean() >= 0.8
  # Negatives sit mostly outside the preferred cluster.
  negatives = interactions["label"] == 0.0
  assert 0 < negatives.mean() < 0.3
  assert (~in_cluster[negatives]).mean() > 0.5


def test_titles_use_cluster_vocabulary(dataset):
  for title, category in zip(dataset.items["title"], dataset.items["category"]):
    cluster = category.removeprefix("cluster_")
    assert all(word.startswith(f"c{cluster}word") for word in title.split())


def test_user_segment_correlates_with_preference(dataset):
  preferred = _preferred_cluster(dataset, dataset.interactions)
  segment = dataset.users.set_index("user_id")["segment"].str.removeprefix("segment_")
  assert (segment == preferred.reindex(segment.index)).mean() >= 0.8


def test_timestamps_increase_per_user(dataset):
  increasing = dataset.interactions.groupby("user_id")["timestamp"].apply(
    lambda values: bool(np.all(np.diff(values.to_numpy()) > 0))
  )
  assert increasing.all()


def test_round_trips_through_contract_files(dataset, tmp_path):
  loaded = contract.load_dataset(contract.write_dataset(dataset, tmp_path))
  pd.testing.assert_frame_equal(loaded.interactions, dataset.interactions)


def test_needs_at_least_two_clusters():
  with pytest.raises(ValueError, match="n_clusters"):
    synthetic.generate(n_clusters=1)
