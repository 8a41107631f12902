"""Tests for model_queries: the real users' requests and the workspace's
dataset (the model's signatures are exercised by `benchmarks.ann` runs)."""

import pandas as pd

from benchmarks import model_queries
from data import contract


def test_a_request_is_the_history_before_the_user_s_last_event():
  interactions = pd.DataFrame({
      "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
      "timestamp": [3, 1, 2, 5, 6, 9],
      "item_id": ["c", "a", "b", "x", "y", "z"]})
  users, histories, timestamps = model_queries._user_requests(  # pylint: disable=protected-access
      interactions, num_users=10, seed=0)
  requests = dict(zip(users, zip(histories, timestamps)))
  # u3 has one event: no history to ask with.
  assert requests == {"u1": (["a", "b"], 3), "u2": (["x"], 6)}


def test_histories_are_padded_to_one_width():
  assert model_queries._pad([["a"], ["b", "c"], []]) == [  # pylint: disable=protected-access
      ["a", ""], ["b", "c"], ["", ""]]


def test_the_workspace_dataset_is_found_from_a_model_version_dir(tmp_path):
  assert model_queries.workspace_dataset(
      str(tmp_path / "serving" / "retrieval" / "1")) is None
  dataset = tmp_path / "datasets" / "mine"
  dataset.mkdir(parents=True)
  pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [1]}
               ).to_csv(dataset / "interactions.csv", index=False)
  found = model_queries.workspace_dataset(
      str(tmp_path / "serving" / "retrieval" / "1"))
  assert isinstance(found, contract.Dataset)
  assert list(found.interactions["item_id"]) == ["i"]
