"""Tests for the serving client, over real gRPC.

They talk to the `target` fixture's server (see `conftest.py`), so setting
VREC_TF_SERVING_ADDRESS or VREC_TF_SERVING_BINARY runs them against a real
TF Serving too (see `serving.testing_grpc`).
"""

import grpc
import numpy as np
import pytest
import tensorflow as tf

from models import serving_names
from serving import client
from serving.testing_grpc import (exact_top_k, local_only, open_stubs,
                                  query_embedding, serve_version_1)
from serving.testing_models import (ITEM_EMBEDDINGS, ITEM_IDS, MODEL_NAME,
                                    QUERY_LOGIT, RANK_QUERIES_SIGNATURE,
                                    RANK_SIGNATURE)


def test_retrieval_request_pads_an_empty_history():
  request = client.retrieval_request(MODEL_NAME, "user_a", [], timestamp=7)
  history = tf.make_ndarray(request.inputs["history_item_ids"])
  assert history.tolist() == [[b""]]
  assert set(request.inputs) == {"user_id", "history_item_ids", "timestamp"}


def test_exclusions_need_the_scann_signature():
  with pytest.raises(ValueError, match=serving_names.RETRIEVE_SCANN):
    client.retrieval_request(MODEL_NAME, "user_a", [], 7,
                             exclude_item_ids=["item_1"])


def test_ranking_request_repeats_the_user_per_candidate():
  request = client.ranking_request(MODEL_NAME, "user_a", ["item_1", "item_2"],
                                   ["item_3", "item_4"], timestamp=7,
                                   history_queries=["red apples", ""])

  assert (request.model_spec.signature_name
          == serving_names.RANKER_HISTORY_QUERIES)
  inputs = {name: tf.make_ndarray(tensor).tolist()
            for name, tensor in request.inputs.items()}
  assert inputs == {
      "user_id": [b"user_a"] * 2, "item_id": [b"item_1", b"item_2"],
      "history_item_ids": [[b"item_3", b"item_4"]] * 2,
      "timestamp": [7, 7],
      "history_queries": [[b"red apples", b""]] * 2}


def test_ranking_request_without_queries_takes_serving_default():
  request = client.ranking_request(MODEL_NAME, "user_a", ["item_1"], [], 7)

  assert request.model_spec.signature_name == serving_names.DEFAULT
  assert "history_queries" not in request.inputs
  assert tf.make_ndarray(request.inputs["history_item_ids"]).tolist() == [[b""]]


@pytest.mark.parametrize("item_ids, history, queries, needle", [
    ([], ["item_1"], None, "no candidate"),
    (["item_2"], ["item_1"], ["a", "b"], "2 history queries for 1 history"),
])
def test_ranking_request_refuses_bad_arguments(item_ids, history, queries,
                                               needle):
  with pytest.raises(ValueError, match=needle):
    client.ranking_request(MODEL_NAME, "user_a", item_ids, history, 7,
                           history_queries=queries)


def _ranker_probabilities(target, user_id, item_ids, query_count):
  with open_stubs(target.address) as stubs:
    query = query_embedding(stubs, user_id)
  logits = ITEM_EMBEDDINGS[[list(ITEM_IDS).index(item_id)
                            for item_id in item_ids]] @ query
  return 1 / (1 + np.exp(-(logits + QUERY_LOGIT * query_count)))


@pytest.mark.parametrize("queries, signature, query_count", [
    (None, RANK_SIGNATURE, 0),
    (["red apples", "", "tea"], RANK_QUERIES_SIGNATURE, 2),
])
def test_rank_sorts_candidates_by_the_rankers_probability(
    target, queries, signature, query_count):
  candidates = ["item_5", "item_6", "item_7", "item_8"]
  expected = _ranker_probabilities(target, "user_a", candidates, query_count)

  result = client.rank(target.address, MODEL_NAME, "user_a", candidates,
                       history=["item_1", "item_2", "item_3"],
                       history_queries=queries, timestamp=1,
                       signature=signature)

  order = np.argsort(-expected)
  assert result.model_version == target.version
  assert result.item_ids == [candidates[i] for i in order]
  assert result.probabilities == pytest.approx(list(expected[order]),
                                               rel=1e-5)


def test_cli_ranks_candidates_with_history_queries(target, capsys):
  candidates = ["item_5", "item_6"]
  expected = _ranker_probabilities(target, "user_a", candidates, 1)

  assert client.main([
      f"--address={target.address}", f"--model_name={MODEL_NAME}",
      "--user_id=user_a", "--history=item_1,item_2",
      "--history_queries=|green tea", "--rank_items=item_5,item_6",
      f"--signature={RANK_QUERIES_SIGNATURE}"]) == 0

  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == (f"model {MODEL_NAME} version {target.version} "
                      f"signature {RANK_QUERIES_SIGNATURE}")
  best = int(np.argmax(expected))
  assert lines[1].split() == ["1", candidates[best], f"{expected[best]:.6f}"]
  assert len(lines) == 3


@pytest.mark.parametrize("flags, needle", [
    (["--history_queries=a"], "needs --rank_items"),
    (["--rank_items=item_1", "--exclude=item_2"], "not with --rank_items"),
])
def test_cli_refuses_flags_that_do_not_go_together(flags, needle, capsys):
  with pytest.raises(SystemExit):
    client.main(["--model_name=m", "--user_id=u", *flags])
  assert needle in capsys.readouterr().err


def test_cli_reports_misaligned_queries_without_a_traceback(capsys):
  assert client.main(["--model_name=m", "--user_id=u", "--history=i1,i2",
                      "--history_queries=only one", "--rank_items=i3"]) == 1
  assert "1 history queries for 2 history items" in capsys.readouterr().err


def test_recommend_returns_top_k_without_history(target):
  with open_stubs(target.address) as stubs:
    query = query_embedding(stubs, "user_a")

  result = client.recommend(target.address, MODEL_NAME, "user_a",
                            history=["item_3"], timestamp=1, k=3)

  expected_ids, expected_scores = exact_top_k(query, 3, {"item_3"})
  assert result.model_version == target.version
  assert result.item_ids == expected_ids
  assert result.scores == pytest.approx(list(expected_scores), rel=1e-5)


def test_recommend_raises_the_servers_status(target):
  with pytest.raises(grpc.RpcError) as raised:
    client.recommend(target.address, "no_such_model", "user_a")
  assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_wait_until_available_returns_the_version(target):
  assert client.wait_until_available(target.address, MODEL_NAME,
                                     timeout_s=10) == target.version


def test_wait_until_available_times_out(target):
  with pytest.raises(TimeoutError, match="no_such_model"):
    client.wait_until_available(target.address, "no_such_model",
                                timeout_s=0.5, poll_interval_s=0.1)


def test_cli_prints_ids_and_scores(target, capsys):
  assert client.main([f"--address={target.address}",
                      f"--model_name={MODEL_NAME}", "--user_id=user_a",
                      "--history=item_3,item_4", "--k=3", "--wait_s=5"]) == 0

  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == (f"model {MODEL_NAME} version {target.version} "
                      "signature serving_default")
  assert len(lines) == 4
  assert lines[1].split()[0] == "1" and lines[1].split()[1].startswith("item_")


def test_cli_reports_errors_without_a_traceback(target, capsys):
  assert client.main([f"--address={target.address}",
                      "--model_name=no_such_model", "--user_id=user_a"]) == 1
  assert "NOT_FOUND" in capsys.readouterr().err


@local_only
def test_recommend_with_retrieve_scann(scann_model_template, tmp_path):
  with serve_version_1(scann_model_template, tmp_path) as handle:
    with open_stubs(handle.address) as stubs:
      query = query_embedding(stubs, "user_b")

    result = client.recommend(handle.address, MODEL_NAME, "user_b",
                              history=["item_1"], k=12,
                              signature=serving_names.RETRIEVE_SCANN,
                              exclude_item_ids=["item_2"])

  assert result.item_ids == exact_top_k(query, 12, {"item_1", "item_2"})[0]


@local_only
def test_recommend_merges_a_multi_vector_users_lists(multi_vector_template,
                                                     tmp_path):
  with serve_version_1(multi_vector_template, tmp_path) as handle:
    with open_stubs(handle.address) as stubs:
      queries = query_embedding(stubs, "user_b")

    result = client.recommend(handle.address, MODEL_NAME, "user_b",
                              history=["item_1"], k=12,
                              signature=serving_names.RETRIEVE_SCANN)

  expected_ids, expected_scores = exact_top_k(queries, 12, {"item_1"})
  assert result.item_ids == expected_ids
  assert result.scores == pytest.approx(list(expected_scores), abs=1e-4)
