"""Tests for eval_requests: the eval users and their Predict requests."""

import pandas as pd
import tensorflow as tf

from benchmarks import eval_requests
from data import contract
from data import features
from models import serving_names
from tfx_pipeline import config as config_lib


def _dataset() -> contract.Dataset:
  # u1 has three positives, u2 two, u3 one (never held out); u1's item c is
  # listed before its history but is the newest.
  return contract.Dataset(interactions=contract.normalize_interactions(
      pd.DataFrame({"user_id": ["u1", "u2", "u1", "u1", "u2", "u3"],
                    "item_id": ["c", "x", "a", "b", "y", "z"],
                    "timestamp": [30, 100, 10, 20, 200, 5]})))


def test_eval_users_carry_the_history_before_the_held_out_item():
  users = eval_requests.eval_users(_dataset(), config_lib.ExamplesConfig())

  assert users == [eval_requests.EvalUser("u1", ["a", "b"], 30),
                   eval_requests.EvalUser("u2", ["x"], 200)]


def test_eval_users_follow_the_pipeline_split_settings():
  short_history = eval_requests.eval_users(
      _dataset(), config_lib.ExamplesConfig(history_length=1))
  two_held_out = eval_requests.eval_users(
      _dataset(), config_lib.ExamplesConfig(eval_holdout=2))
  temporal = eval_requests.eval_users(
      _dataset(), config_lib.ExamplesConfig(split="temporal",
                                            temporal_cut_quantile=0.9))

  assert short_history[0] == eval_requests.EvalUser("u1", ["b"], 30)
  # u2 has no positive left for train, so it is not an eval user.
  assert two_held_out == [eval_requests.EvalUser("u1", ["a"], 20)]
  # The cut is at 200: all of u1 is train, u2's y is its first eval item.
  assert temporal == [eval_requests.EvalUser("u2", ["x"], 200)]


def _inputs(request) -> dict:
  return {name: tf.make_ndarray(proto).tolist()
          for name, proto in request.inputs.items()}


def test_request_pool_sends_each_user_to_the_signature():
  users = [eval_requests.EvalUser("u1", ["a", "b"], 30),
           eval_requests.EvalUser("u2", [], 200)]

  scann = eval_requests.request_pool(users, "retrieval",
                                       serving_names.RETRIEVE_SCANN, 7)
  exact = eval_requests.request_pool(users, "retrieval",
                                       serving_names.retrieve_top(100), 7)

  assert [r.model_spec.signature_name for r in scann + exact] == (
      [serving_names.RETRIEVE_SCANN] * 2 +
      [serving_names.retrieve_top(100)] * 2)
  assert {r.model_spec.name for r in scann + exact} == {"retrieval"}
  assert _inputs(scann[0]) == {features.USER_ID: [b"u1"],
                               features.HISTORY_ITEM_IDS: [[b"a", b"b"]],
                               features.TIMESTAMP: [30],
                               serving_names.SCANN_K: 7}
  # An empty history is one padding id; only retrieve_scann takes k.
  assert _inputs(exact[1]) == {features.USER_ID: [b"u2"],
                               features.HISTORY_ITEM_IDS: [[b""]],
                               features.TIMESTAMP: [200]}
