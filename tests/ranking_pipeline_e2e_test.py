"""End-to-end: the `ranking` family, pre-trained by COURIER, on a MovieLens sample.

One run: ExampleGen writes CTR negatives, the PretrainTrainer trains COURIER,
the Trainer trains the DIN + DCN-v2 ranker on its frozen item embeddings, the
Evaluator gates on AUC and log loss, and the Pusher ships the ranker (no
ScaNN index: a ranker scores given candidates).
"""

import numpy as np
import pytest
import tensorflow as tf

from tfx_pipeline import local_runner
from tfx_pipeline import run_summary
from tests import pipeline_fixtures

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 60


@pytest.fixture(scope="module")
def ranking_run(tmp_path_factory):
  dataset_dir = pipeline_fixtures.write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"), n_users=SAMPLE_USERS)
  config = pipeline_fixtures.sample_config(
      tmp_path_factory.mktemp("workspace"), dataset_dir,
      model_family="ranking", pretrain_hparams={"epochs": 1},
      ranking_auc_lower_bound=0.0, ranking_log_loss_upper_bound=10.0)
  config.hparams = {"epochs": 1}
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path)


def test_courier_then_ranker_then_auc_gate_then_push(ranking_run):
  config, summary = ranking_run
  states = {run.component: run.state for run in summary.components}
  assert {"PretrainTrainer", "Trainer", "Evaluator", "Pusher"} <= set(states)
  assert "ScannIndexGen" not in states
  assert all(state == "complete" for state in states.values()), states
  overall = summary.metrics["overall"]
  # One positive and config.ctr_negatives sampled negatives per eval user.
  assert overall["example_count"] == SAMPLE_USERS * (1 + config.ctr_negatives)
  assert overall["mean_label"] == pytest.approx(1 / (1 + config.ctr_negatives))
  assert 0.0 <= overall["auc"] <= 1.0
  assert overall["binary_crossentropy"] > 0.0
  assert summary.blessed is True and summary.pushed_dir


def test_pushed_ranker_scores_raw_candidates(ranking_run):
  _, summary = ranking_run
  loaded = tf.saved_model.load(summary.pushed_dir)
  scores = loaded.signatures["serving_default"](
      user_id=tf.constant(["1", "1", "never-seen-user"]),
      item_id=tf.constant(["50", "181", "unknown-item"]),
      history_item_ids=tf.constant([["258", ""], ["258", ""], ["", ""]]),
      timestamp=tf.constant([881250949, 881250949, 881250949], tf.int64),
  )["probability"].numpy()
  assert scores.shape[0] == 3
  assert np.all((scores > 0.0) & (scores < 1.0))
  # Two different candidates for the same user get different scores.
  assert scores[0] != scores[1]
