"""End-to-end: the `ranking` family, pre-trained by COURIER, on a MovieLens sample.

One run: ExampleGen writes CTR negatives, the PretrainTrainer trains COURIER,
the Trainer trains the DIN + DCN-v2 ranker on its frozen item embeddings
(each stopping early on validation rows carved from train, with its learning
curve in the run summary), the
Evaluator scores AUC and log loss, and the Pusher ships the ranker (no ScaNN
index: a ranker scores given candidates). One epoch on 60 users cannot pass
the default gate, so this run's gate is open; the default gate's AUC and log
loss bounds are run on stand-ins of its ranker (`tests.evaluator_gate`, no
pipeline run): a coin flip must be rejected by both, an oracle blessed.
"""

import dataclasses
import glob
import os

import pytest
import tensorflow as tf

from data import features
from models import serving_names
from tests import evaluator_gate
from tests import pipeline_fixtures
from tfx_pipeline import config as config_lib
from tfx_pipeline import evaluation

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 60


@pytest.fixture(scope="module")
def ranking_run(tmp_path_factory):
  return pipeline_fixtures.run_ranking_sample(
      tmp_path_factory, "ranking", SAMPLE_USERS, hparams={"epochs": 1},
      pretrain_hparams={"epochs": 1})


def test_courier_then_ranker_then_evaluator_then_push(ranking_run):
  config, summary = ranking_run
  pipeline_fixtures.assert_ranking_run_pushed(config, summary, SAMPLE_USERS)


def test_both_trainers_wrote_their_early_stopping_curves(ranking_run):
  _, summary = ranking_run
  pipeline_fixtures.assert_one_epoch_learning_curves(summary, {
      "PretrainTrainer": ("courier", "loss"),
      "Trainer": ("ranking", "auc")})


def test_pushed_ranker_scores_raw_candidates(ranking_run):
  _, summary = ranking_run
  pipeline_fixtures.assert_pushed_ranker_scores_raw_candidates(
      summary.pushed_dir)


def _coin_flip(examples, outputs):
  del examples
  probability = outputs[serving_names.RANKER_PROBABILITY]
  return {serving_names.RANKER_PROBABILITY: tf.fill(tf.shape(probability),
                                                    0.5)}


def _oracle(examples, outputs):
  """Reads each example's label: AUC 1, log loss 0.16 at a 1:4 label mix."""
  labels = tf.io.parse_example(examples, {
      features.LABEL: tf.io.FixedLenFeature([1], tf.float32)})[features.LABEL]
  probability = outputs[serving_names.RANKER_PROBABILITY]
  return {serving_names.RANKER_PROBABILITY: tf.reshape(
      0.1 + 0.6 * labels, tf.shape(probability))}


@pytest.mark.parametrize("stand_in, blessed, failures", [
    (_coin_flip, False, {(evaluation.RANKING_GATE_METRIC, "value"),
                         (evaluation.LOG_LOSS_METRIC, "value")}),
    (_oracle, True, set()),
])
def test_the_default_ranking_gate_bounds_auc_and_log_loss(
    ranking_run, tmp_path, stand_in, blessed, failures):
  config, _ = ranking_run
  (trained,) = glob.glob(os.path.join(config.pipeline_root, "Trainer",
                                      "model", "*"))
  (examples,) = glob.glob(os.path.join(
      config.pipeline_root, "InteractionExampleGen", "examples", "*"))
  candidate = evaluator_gate.save_evaluate_variant(
      trained, str(tmp_path / "candidate"), stand_in)
  result = evaluator_gate.run_gate(
      examples, candidate, None, evaluation.eval_config(
          dataclasses.replace(config, gate=config_lib.GateConfig())),
      str(tmp_path / "gate"))
  assert result.blessed is blessed
  assert result.failures == failures
