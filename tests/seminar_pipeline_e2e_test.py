"""End-to-end: the `seminar` family, pre-trained by its PSU, on a MovieLens sample.

One run: ExampleGen writes CTR negatives and each history item's search
query, Transform tokenizes queries with the titles, the PretrainTrainer
trains SEMINAR's PSU, the Trainer restores it, fine-tunes (both stopping
early on validation rows carved from train, with their learning curves in
the run summary) and exports PQ-approximate attention (item codes computed
once, at export), the Evaluator gates on AUC and log loss of the calibrated
probability, and the Pusher ships the ranker without a ScaNN index.

MovieLens has no search log, so the contract file gets a synthetic `query`
column (`_with_search_queries`): the run carries real queries from the file to
a raw request, sent over gRPC by `serving.client` to the pushed ranker.
"""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from data import features
from models import serving_names
from serving import client
from serving import server
from tests import pipeline_fixtures

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 60
# Small and fast: the run proves the wiring, not quality. The embedding width
# is set for the PSU only, so the fine-tuning Trainer must inherit it.
TINY_PSU = {"epochs": 1, "batch_size": 32, "embedding_dim": 16}
TINY_SEMINAR = {"epochs": 1, "batch_size": 32, "num_negatives": 16,
                "pq_subspaces": 4, "pq_centroids": 64,
                "attention_scoring": "pq"}


def _with_search_queries(interactions):
  """Synthetic search logs: every third interaction (by timestamp) came from
  a query naming one of five keywords, the others from none."""
  interactions = interactions.copy()
  keyword = "kw" + (interactions["item_id"].astype(int) % 5).astype(str)
  interactions["query"] = np.where(interactions["timestamp"] % 3 == 0,
                                   keyword + " movie", "")
  return interactions


@pytest.fixture(scope="module")
def seminar_run(tmp_path_factory):
  return pipeline_fixtures.run_ranking_sample(
      tmp_path_factory, "seminar", SAMPLE_USERS, hparams=dict(TINY_SEMINAR),
      pretrain_hparams=dict(TINY_PSU), transform=_with_search_queries)


def _examples(artifact_uri: str, split: str):
  files = glob.glob(os.path.join(artifact_uri, f"Split-{split}", "*.gz"))
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
    yield tf.train.Example.FromString(record.numpy()).features.feature


def test_psu_then_fine_tuning_then_auc_gate_then_push(seminar_run):
  config, summary = seminar_run
  pipeline_fixtures.assert_ranking_run_pushed(config, summary, SAMPLE_USERS)


def test_both_trainers_wrote_their_early_stopping_curves(seminar_run):
  _, summary = seminar_run
  pipeline_fixtures.assert_one_epoch_learning_curves(summary, {
      "PretrainTrainer": ("seminar_psu", "loss"),
      "Trainer": ("seminar", "auc")})


def test_history_queries_reach_the_transformed_examples(seminar_run):
  _, summary = seminar_run
  searched = 0
  for example in _examples(summary.artifacts["InteractionExampleGen.examples"],
                           "train"):
    queries = example[features.HISTORY_QUERIES].bytes_list.value
    assert len(queries) == len(
        example[features.HISTORY_ITEM_IDS].bytes_list.value)
    searched += sum(query.startswith(b"kw") for query in queries)
    assert {query for query in queries if not query.startswith(b"kw")} <= {b""}
  assert searched > 0
  # Transform tokenizes them in the eval split too, where the Evaluator
  # reads them.
  assert any(np.any(example[features.HISTORY_QUERY_TOKEN_INDICES]
                    .int64_list.value)
             for example in _examples(
                 summary.artifacts["Transform.transformed_examples"], "eval"))


def test_pushed_seminar_scores_raw_candidates(seminar_run):
  _, summary = seminar_run
  pipeline_fixtures.assert_pushed_ranker_scores_raw_candidates(
      summary.pushed_dir)


def test_pushed_seminar_reads_the_requests_history_queries(seminar_run):
  config, summary = seminar_run
  loaded = tf.saved_model.load(summary.pushed_dir)
  request = dict(user_id=tf.constant(["1", "1"]),
                 item_id=tf.constant(["50", "50"]),
                 history_item_ids=tf.constant([["258", "181"]] * 2),
                 timestamp=tf.constant([881250949] * 2, tf.int64))
  default = loaded.signatures[serving_names.DEFAULT](**request)[
      serving_names.RANKER_PROBABILITY]
  served = loaded.signatures[serving_names.RANKER_HISTORY_QUERIES](
      **request, history_queries=tf.constant([["", ""], ["kw1 movie", ""]])
  )[serving_names.RANKER_PROBABILITY].numpy()
  # No query: the derived ones, as serving_default; a real one changes it.
  assert served[0] == pytest.approx(default.numpy()[0], rel=1e-6)
  assert abs(served[1] - served[0]) > 1e-6

  # The same request over gRPC, as a client sends it to the served ranker.
  with server.serve(server.ServerConfig(model_base_path=config.serving_dir,
                                        port=0)) as handle:
    client.wait_until_available(handle.address, config.model_name,
                                timeout_s=60)
    ranked = {query: client.rank(
        handle.address, config.model_name, "1", ["50"], ["258", "181"],
        history_queries=[query, ""], timestamp=881250949)
              for query in ("", "kw1 movie")}
  assert ranked[""].probabilities == pytest.approx([served[0]], rel=1e-6)
  assert ranked["kw1 movie"].probabilities == pytest.approx([served[1]],
                                                             rel=1e-6)
