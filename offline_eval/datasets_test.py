"""Invariants of the in-memory benchmark datasets: the real MovieLens-100K and
a contract directory."""

import numpy as np
import pandas as pd
import pytest

from data import contract
from data import features
from data import synthetic
from offline_eval import datasets
from tests import prerequisites


@pytest.fixture(scope="module")
def movielens():
  prerequisites.shared_data_root("movielens-100k")
  return datasets.load_sequences("movielens-100k")


def test_every_user_has_train_valid_and_test_items(movielens):
  assert movielens.num_users == 942
  assert movielens.item_ids[0] == ""
  assert all(len(sequence) >= 1 for sequence in movielens.train_sequences)
  assert (movielens.valid_items > 0).all() and (movielens.test_items > 0).all()


def test_split_is_by_time(movielens):
  ratings = movielens.ratings[movielens.ratings["rating"] >= 4]
  for user in (0, 100, 500):
    times = ratings[ratings["user_index"] == user].set_index("item_index")["timestamp"]
    assert times[movielens.test_items[user]] >= times[movielens.valid_items[user]]
    assert times[movielens.valid_items[user]] >= times[movielens.train_sequences[user]].max()


def test_padded_history_layout(movielens):
  history = movielens.padded_history(4, include_valid=True)
  user = 0
  expected = np.append(movielens.train_sequences[user], movielens.valid_items[user])[-4:]
  np.testing.assert_array_equal(history[user], expected)
  assert history.shape == (movielens.num_users, 4)


def test_side_information_is_indexed(movielens):
  toy_story = int(np.flatnonzero(movielens.item_ids == "1")[0])
  tokens = {movielens.token_names[t] for t in movielens.item_tokens[toy_story] if t}
  assert {"genre:Animation", "decade:1990s", "word:story"} <= tokens
  assert any(token.startswith("language:") for token in tokens)
  categories = {movielens.category_names[c] for c in movielens.item_categories[toy_story] if c}
  assert categories == {"Animation", "Children's", "Comedy"}
  assert set(movielens.users.columns) >= {"age", "gender", "occupation"}
  assert movielens.train_counts()[0] == 0


def test_next_item_examples_are_every_train_prefix(movielens):
  users, histories, targets = movielens.next_item_examples(3)
  assert len(targets) == sum(len(s) for s in movielens.train_sequences)
  sequence = movielens.train_sequences[0]
  first = np.flatnonzero(users == 0)
  np.testing.assert_array_equal(targets[first], sequence)
  np.testing.assert_array_equal(histories[first[0]], [0, 0, 0])
  np.testing.assert_array_equal(histories[first[1]], [sequence[0], 0, 0])
  np.testing.assert_array_equal(histories[first[4]], sequence[1:4])


def test_candidate_features_and_sampling_have_an_oov_row(movielens):
  catalogue = movielens.candidate_features()
  num_rows = movielens.num_items + 1
  assert {len(values) for values in catalogue.values()} == {num_rows}
  assert not catalogue[features.TITLE_TOKEN_INDICES][-1].any()
  np.testing.assert_array_equal(catalogue[features.TITLE_TOKEN_INDICES][:-1],
                                movielens.item_tokens)
  probability = movielens.train_sampling_probability()
  assert probability.shape == (num_rows,) and probability[-1] == 0
  assert probability.sum() == pytest.approx(1.0)


def test_the_catalogue_is_the_items_with_a_positive_in_the_fit(movielens):
  trained = np.zeros(movielens.num_items, bool)
  trained[np.concatenate(movielens.train_sequences)] = True
  np.testing.assert_array_equal(movielens.catalogue(include_valid=False),
                                trained)
  trained[movielens.valid_items] = True
  np.testing.assert_array_equal(movielens.catalogue(include_valid=True),
                                trained)
  # MovieLens has rated movies no user liked before their last two picks;
  # padding is never a candidate.
  assert not trained[0] and not trained.all()


@pytest.fixture(scope="module")
def contract_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp("contract")
  contract.write_dataset(synthetic.generate(n_users=30, n_items=40, seed=1),
                         directory)
  return directory


def test_a_contract_directory_loads_like_a_built_in_dataset(contract_dir):
  dataset = datasets.load_sequences(datasets.CONTRACT,
                                    dataset_dir=contract_dir)
  raw = contract.load_dataset(contract_dir)
  positives = raw.interactions[raw.interactions["label"] >= 0.5]
  assert dataset.name == contract_dir.name
  assert dataset.num_users == positives["user_id"].nunique()
  # Every positive is a train, validation or test item exactly once.
  assert (sum(len(s) for s in dataset.train_sequences) + 2 * dataset.num_users
          == len(positives.drop_duplicates(["user_id", "item_id", "timestamp"])))
  assert (dataset.test_items > 0).all() and (dataset.valid_items > 0).all()
  np.testing.assert_array_equal(dataset.users["user_id"], dataset.user_ids)
  assert dataset.item_categories.any() and dataset.item_tokens.any()
  assert set(dataset.item_relations) == {"complement", "substitute"}


def test_held_out_ratings_are_no_model_input_and_follow_the_history(movielens):
  held_out = movielens.held_out_ratings()
  users = held_out["user_index"].to_numpy()
  items = held_out["item_index"].to_numpy()
  for user, item in zip(users, items):
    assert item not in movielens.train_sequences[user]
  assert not (items == movielens.valid_items[users]).any()
  # Every user's test target is there, the only positive: nothing else liked
  # comes after the validation item.
  positives = held_out[held_out["label"] == 1]
  np.testing.assert_array_equal(
      np.sort(positives["item_index"].to_numpy() +
              movielens.num_items * positives["user_index"].to_numpy()),
      np.sort(movielens.test_items +
              movielens.num_items * np.arange(movielens.num_users)))
  ratings = movielens.ratings
  valid_time = ratings[ratings["item_index"].to_numpy() == movielens.valid_items[
      ratings["user_index"].to_numpy()]].set_index("user_index")["timestamp"]
  assert (held_out["timestamp"].to_numpy() >=
          valid_time.reindex(users).to_numpy()).all()
  negatives = held_out["label"] == 0
  assert negatives.sum() > positives.shape[0]
  assert (held_out["rating"][negatives] < 4).all()


def test_without_relation_tokens_keeps_every_other_token(contract_dir):
  dataset = datasets.load_sequences(datasets.CONTRACT, dataset_dir=contract_dir)
  stripped = datasets.without_relation_tokens(dataset)

  def names(data, item):
    return {data.token_names[token] for token in data.item_tokens[item] if token}

  assert any(name.startswith(datasets.RELATION_TOKEN_PREFIX)
             for name in dataset.token_names)
  assert not any(name.startswith(datasets.RELATION_TOKEN_PREFIX)
                 for name in stripped.token_names)
  assert stripped.token_names[0] == ""
  for item in range(dataset.num_items):
    assert names(stripped, item) == {
        name for name in names(dataset, item)
        if not name.startswith(datasets.RELATION_TOKEN_PREFIX)}


def test_contract_item_tokens_are_categories_title_words_and_related_items():
  items = pd.DataFrame({"item_id": ["a"], "title": ["Green Tea, 20 bags"],
                        "category": ["Drinks|Tea"], "related_items": ["b|c"]})
  assert datasets.contract_item_tokens(items) == {"a": [
      "cat:Drinks", "cat:Tea", "word:green", "word:tea", "word:20",
      "word:bags", "rel:b", "rel:c"]}


def test_contract_needs_a_directory():
  with pytest.raises(ValueError, match="dataset directory"):
    datasets.load_sequences(datasets.CONTRACT)


def test_event_types_are_indexed_and_aligned_with_the_items():
  # Taobao-like behaviours; user u1's last two events are valid and test.
  interactions = pd.DataFrame({
      "user_id": ["u1"] * 5 + ["u2"] * 3,
      "item_id": ["a", "b", "c", "d", "e", "b", "c", "a"],
      "timestamp": np.arange(8, dtype=np.int64),
      "label": 1.0,
      "event": ["pv", "cart", "", "buy", "pv", "fav", "pv", "buy"],
      "item_type": "item", "query": ""})
  dataset = datasets.from_contract(contract.Dataset(interactions), "events")
  assert dataset.event_names == ["", "buy", "cart", "fav", "pv"]
  np.testing.assert_array_equal(dataset.train_events[0], [4, 2, 0])
  np.testing.assert_array_equal(dataset.train_events[1], [3])
  np.testing.assert_array_equal(dataset.valid_events, [1, 4])
  np.testing.assert_array_equal(
      dataset.next_item_event_histories(2), [[0, 0], [4, 0], [4, 2], [0, 0]])
  np.testing.assert_array_equal(dataset.padded_event_history(3, True),
                                [[2, 0, 1], [3, 4, 0]])
  np.testing.assert_array_equal(dataset.padded_history(3, True),
                                [[2, 3, 4], [2, 3, 0]])


def test_events_from_the_hold_out_time_are_in_no_split_but_indexed():
  interactions = pd.DataFrame({
      "user_id": ["u1"] * 5 + ["u2"] * 4,
      "item_id": ["a", "b", "c", "d", "e", "b", "c", "a", "f"],
      "timestamp": np.array([0, 1, 2, 10, 11, 3, 4, 5, 12], np.int64),
      "label": 1.0,
      "event": ["pv", "pv", "pv", "buy", "pv", "pv", "pv", "pv", "pv"],
      "item_type": "item", "query": ""})
  dataset = datasets.from_contract(contract.Dataset(interactions), "held",
                                   held_out_from=10)
  # Items d, e and f occur only from time 10 on: indexed, never trained.
  assert list(dataset.item_ids) == ["", "a", "b", "c", "d", "e", "f"]
  np.testing.assert_array_equal(dataset.test_items, [3, 1])
  np.testing.assert_array_equal(dataset.valid_items, [2, 3])
  np.testing.assert_array_equal(dataset.train_sequences[0], [1])
  assert not dataset.catalogue(include_valid=True)[4:].any()
  assert dataset.held_out_events.to_dict("list") == {
      "user_index": [0, 0, 1], "item_index": [4, 5, 6],
      "event": ["buy", "pv", "pv"], "timestamp": [10, 11, 12]}
  everything = datasets.from_contract(contract.Dataset(interactions), "all")
  assert everything.held_out_events is None
  np.testing.assert_array_equal(everything.test_items, [5, 6])


def test_hm_holds_out_its_last_days_and_keeps_each_customers_attributes():
  dataset = datasets.load_sequences(
      datasets.HM, prerequisites.shared_data_root(datasets.HM))
  held_out = dataset.held_out_events
  assert held_out["timestamp"].min() >= datasets.HM_HELD_OUT_FROM
  # 31,662 purchase rows, 13 % of them from the held-out days on.
  assert 0.1 < len(held_out) / 31_662 < 0.15
  np.testing.assert_array_equal(dataset.users["user_id"], dataset.user_ids)
  assert {"age", "club_member_status"} <= set(dataset.users.columns)
  # Only the articles with metadata have categories: 4,116 of 17,033.
  assert (dataset.item_categories[:, 0] > 0).sum() == 4116
