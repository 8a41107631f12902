"""End-to-end: the `seminar` family, pre-trained by its PSU, on a MovieLens sample.

One run: ExampleGen writes CTR negatives, Transform tokenizes queries with
the titles, the PretrainTrainer trains SEMINAR's PSU, the Trainer restores it,
fine-tunes and exports PQ-approximate attention (item codes computed once,
at export), the Evaluator gates on AUC and log loss of the calibrated
probability, and the Pusher ships the ranker without a ScaNN index.
"""

import pytest

from tests import pipeline_fixtures

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 60
# Small and fast: the run proves the wiring, not quality. The embedding width
# is set for the PSU only, so the fine-tuning Trainer must inherit it.
TINY_PSU = {"epochs": 1, "batch_size": 32, "embedding_dim": 16}
TINY_SEMINAR = {"epochs": 1, "batch_size": 32, "num_negatives": 16,
                "pq_subspaces": 4, "pq_centroids": 64,
                "attention_scoring": "pq"}


@pytest.fixture(scope="module")
def seminar_run(tmp_path_factory):
  return pipeline_fixtures.run_ranking_sample(
      tmp_path_factory, "seminar", SAMPLE_USERS, hparams=dict(TINY_SEMINAR),
      pretrain_hparams=dict(TINY_PSU))


def test_psu_then_fine_tuning_then_auc_gate_then_push(seminar_run):
  config, summary = seminar_run
  pipeline_fixtures.assert_ranking_run_pushed(config, summary, SAMPLE_USERS)


def test_pushed_seminar_scores_raw_candidates(seminar_run):
  _, summary = seminar_run
  pipeline_fixtures.assert_pushed_ranker_scores_raw_candidates(
      summary.pushed_dir)
