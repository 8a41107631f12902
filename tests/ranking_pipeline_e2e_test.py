"""End-to-end: the `ranking` family, pre-trained by COURIER, on a MovieLens sample.

One run: ExampleGen writes CTR negatives, the PretrainTrainer trains COURIER,
the Trainer trains the DIN + DCN-v2 ranker on its frozen item embeddings, the
Evaluator gates on AUC and log loss, and the Pusher ships the ranker (no
ScaNN index: a ranker scores given candidates).
"""

import pytest

from tests import pipeline_fixtures

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 60


@pytest.fixture(scope="module")
def ranking_run(tmp_path_factory):
  return pipeline_fixtures.run_ranking_sample(
      tmp_path_factory, "ranking", SAMPLE_USERS, hparams={"epochs": 1},
      pretrain_hparams={"epochs": 1})


def test_courier_then_ranker_then_auc_gate_then_push(ranking_run):
  config, summary = ranking_run
  pipeline_fixtures.assert_ranking_run_pushed(config, summary, SAMPLE_USERS)


def test_pushed_ranker_scores_raw_candidates(ranking_run):
  _, summary = ranking_run
  pipeline_fixtures.assert_pushed_ranker_scores_raw_candidates(
      summary.pushed_dir)
