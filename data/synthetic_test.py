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


# ---------------------------------------------------------------- the large log

_LOG_SIZE = 40_000


@pytest.fixture(scope="module")
def log() -> contract.Dataset:
  return synthetic.generate_log(_LOG_SIZE)


def test_log_has_exactly_the_rows_asked_and_is_seeded(log):
  assert len(log.interactions) == _LOG_SIZE
  again = synthetic.generate_log(_LOG_SIZE)
  pd.testing.assert_frame_equal(log.interactions, again.interactions)
  other = synthetic.generate_log(_LOG_SIZE, seed=1)
  assert not log.interactions["item_id"].equals(other.interactions["item_id"])


def test_log_shape_grows_with_the_size():
  small, large = (synthetic.LogShape.for_size(size)
                  for size in (100_000, 10_000_000))
  assert (large.n_users, large.n_items) == (100 * small.n_users,
                                            100 * small.n_items)
  assert large.n_categories > small.n_categories
  with pytest.raises(ValueError, match="at least"):
    synthetic.LogShape.for_size(5)


def test_a_given_item_count_sets_the_catalogue_apart_from_the_traffic():
  shape = synthetic.LogShape.for_size(_LOG_SIZE, n_items=5_000)
  assert (shape.n_users, shape.n_items) == (
      synthetic.LogShape.for_size(_LOG_SIZE).n_users, 5_000)
  assert shape.n_categories == 5_000 // synthetic.LOG_ITEMS_PER_CATEGORY
  with pytest.raises(ValueError, match="at least 50 items"):
    synthetic.LogShape.for_size(_LOG_SIZE, n_items=49)
  dataset = synthetic.generate_log(_LOG_SIZE, n_items=5_000)
  assert len(dataset.interactions) == _LOG_SIZE
  assert len(dataset.items) == 5_000
  # Zipf-like popularity: a few hundred events per item on average would
  # touch every item; at 8 per item the tail is left untouched.
  touched = dataset.interactions["item_id"].nunique()
  assert 0.2 * 5_000 < touched < 5_000
  assert set(dataset.interactions["item_id"]) <= set(dataset.items["item_id"])


def test_user_activity_is_heavy_tailed(log):
  per_user = log.interactions.groupby("user_id", observed=True).size()
  assert len(per_user) == synthetic.LogShape.for_size(_LOG_SIZE).n_users
  assert per_user.min() >= synthetic.LOG_MIN_EVENTS_PER_USER
  # A log-normal with sigma 1.2: the busiest users are tens of medians.
  assert per_user.max() > 10 * per_user.median()
  assert per_user.mean() > 1.5 * per_user.median()


def test_item_popularity_is_zipf_like(log):
  counts = log.interactions["item_id"].value_counts().to_numpy()
  top_tenth = counts[:len(counts) // 10].sum() / counts.sum()
  assert top_tenth > 0.4
  # The rank-frequency line in log-log falls with a slope near -1.
  ranks = np.arange(1, len(counts) + 1)
  slope = np.polyfit(np.log(ranks[:100]), np.log(counts[:100]), 1)[0]
  assert -1.6 < slope < -0.5


def test_each_user_mostly_keeps_to_one_category(log):
  primary = log.items.set_index("item_id")["category"].str.split("|").str[0]
  category = log.interactions["item_id"].astype(str).map(primary)
  favourite_share = category.groupby(
      log.interactions["user_id"].astype(str)).agg(
          lambda values: values.value_counts().iloc[0] / len(values))
  assert favourite_share.mean() > synthetic.LOG_TASTE_SHARE


def test_log_timestamps_increase_per_user_within_the_span(log):
  interactions = log.interactions
  assert (interactions.groupby("user_id", observed=True)["timestamp"].diff()
          .dropna() > 0).all()
  span = interactions["timestamp"].max() - interactions["timestamp"].min()
  # Exponential gaps: a user's history may overrun the span a little.
  assert 0.5 * synthetic.LOG_SPAN_SECONDS < span < 1.1 * synthetic.LOG_SPAN_SECONDS


def test_log_items_have_titles_categories_and_videos(log):
  items = log.items
  assert set(log.interactions["item_id"].astype(str)) <= set(items["item_id"])
  assert items["title"].str.split().str.len().between(3, 8).all()
  assert items["category"].str.fullmatch(r"cat_\d+(\|cat_\d+)?").all()
  videos = (log.interactions["item_type"] == "video").mean()
  negatives = (log.interactions["label"] == 0.0).mean()
  assert 0.1 < videos < 0.6
  assert negatives == pytest.approx(synthetic.LOG_NEGATIVE_RATE, abs=0.02)
  assert ((log.interactions["label"] == 0.0)
          == (log.interactions["event"] == "dismiss")).all()


@pytest.mark.parametrize("fmt", contract.WRITE_FORMATS)
def test_written_log_reads_back_as_the_contract(tmp_path, fmt):
  directory = synthetic.write_log(tmp_path, 5_000, fmt=fmt)
  loaded = contract.load_dataset(directory)
  expected = synthetic.generate_log(5_000)
  pd.testing.assert_frame_equal(
      loaded.interactions,
      contract.normalize_interactions(expected.interactions))
  pd.testing.assert_frame_equal(loaded.items, expected.items)


def test_time_ordered_log_holds_the_same_rows_in_time_order(tmp_path):
  by_user = contract.load_dataset(synthetic.write_log(tmp_path / "u", 2_000))
  by_time = contract.load_dataset(
      synthetic.write_log(tmp_path / "t", 2_000, time_ordered=True))
  assert by_time.interactions["timestamp"].is_monotonic_increasing
  assert not by_user.interactions["timestamp"].is_monotonic_increasing
  columns = list(by_user.interactions.columns)
  assert (by_time.interactions.sort_values(columns, ignore_index=True)
          .equals(by_user.interactions.sort_values(columns,
                                                   ignore_index=True)))
