"""End-to-end: the `ranking` family, pre-trained by COURIER on real H&M photos.

The H&M importer's purchases of the 12 most bought articles, by the customers
who bought two or more of them, and those 12 articles' real 64x96 photos (a
zip extracted at test time from the shared `images_64x96.zip`). One pipeline
run: ExampleGen writes CTR negatives, the PretrainTrainer decodes the
catalogue's images with its Beam step and pre-trains COURIER with a small
CNN on them, the Trainer trains the DIN + DCN-v2 ranker on COURIER's frozen
item and image embeddings (each stopping early on validation rows carved
from train, with its learning curve in the run summary), the Evaluator
scores AUC and log loss and the Pusher ships the ranker (no ScaNN index: a
ranker scores given candidates). Then the project's gRPC server serves the
pushed ranker and the client scores candidates by id: the export holds the
image embeddings and has no op that decodes an image.

One epoch on 50 users cannot pass the default gate, so this run's gate is
open; the default gate's AUC and log loss bounds are run on stand-ins of its
ranker (`tests.evaluator_gate`, no pipeline run): a coin flip must be
rejected by both, an oracle blessed. COURIER without images trains in
`models/ctr/trainer_test.py`; its pipeline wiring is this run's.
"""

import dataclasses
import glob
import os
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from data import contract
from data import features
from data import importers
from models import serving_names
from models.ctr import export as ctr_export
from models.ctr import trainer as ctr_trainer
from models.ctr import export_testing
from serving import client
from serving import server
from tests import evaluator_gate
from tests import pipeline_fixtures
from tests import prerequisites
from tfx_pipeline import config as config_lib
from tfx_pipeline import evaluation
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary
from tfx_pipeline.report import summary_text

pytestmark = pytest.mark.e2e

NUM_ITEMS = 12
IMAGES_ZIP = "images_64x96.zip"


def write_hm_sample(directory) -> tuple[str, str, list[str]]:
  """The sample as a contract directory and a zip of its items' photos.

  Returns:
    `(dataset directory, images zip, the sample's item ids)`.
  """
  root = prerequisites.shared_data_root("hm-fashion")
  dataset = importers.IMPORTERS["hm-fashion"](root)
  purchases = dataset.interactions
  top = list(purchases["item_id"].value_counts().index[:NUM_ITEMS])
  purchases = purchases[purchases["item_id"].isin(top)]
  distinct = purchases.groupby("user_id")["item_id"].nunique()
  purchases = purchases[purchases["user_id"].isin(
      distinct.index[distinct >= 2])].reset_index(drop=True)
  dataset_dir = contract.write_dataset(contract.Dataset(
      interactions=purchases,
      items=dataset.items[dataset.items["item_id"].isin(top)],
      users=dataset.users), directory / "dataset")
  images = directory / "images.zip"
  with zipfile.ZipFile(root / "hm-fashion" / IMAGES_ZIP) as source, \
      zipfile.ZipFile(images, "w") as sample:
    for item_id in top:
      sample.writestr(f"{item_id}.jpg", source.read(f"{item_id}.jpg"))
  return str(dataset_dir), str(images), top


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
  directory = tmp_path_factory.mktemp("hm_images")
  dataset_dir, images, item_ids = write_hm_sample(directory)
  config = pipeline_fixtures.sample_config(
      directory / "workspace", dataset_dir, model_family="ranking",
      model_name="ranker",
      pretrain_hparams={"epochs": 1, "batch_size": 16,
                        "image_filters": [8, 16],
                        ctr_trainer.IMAGES_PATH: images},
      gate=config_lib.GateConfig(ranking_auc_lower_bound=0.0,
                                 ranking_log_loss_upper_bound=10.0))
  config.hparams = {"epochs": 1, "batch_size": 64}
  local_runner.run(config)
  users = contract.load_dataset(dataset_dir).interactions["user_id"].nunique()
  return config, run_summary.summarize(config.metadata_path), item_ids, users


def test_images_to_courier_to_pushed_ranker(image_run):
  config, summary, item_ids, users = image_run
  pipeline_fixtures.assert_ranking_run_pushed(config, summary, users)
  images = summary.item_images["PretrainTrainer"]
  assert images.skipped == {} and images.resized == 0
  assert 2 <= images.items == images.decoded <= len(item_ids)
  assert (images.height, images.width) == (96, 64)
  text = summary_text.format_summary(summary, "metrics", [("ranking", "")],
                                     evaluation.RANKING_METRIC_NAMES)
  assert f"PretrainTrainer item images: {images.in_words()}" in text


def test_the_pushed_ranker_holds_the_image_embeddings_and_decodes_no_image(
    image_run):
  _, summary, item_ids, _ = image_run
  pretrained = summary.artifacts["PretrainTrainer.model"]
  image_table = ctr_export.load_image_table(f"{pretrained}/Format-Serving",
                                            item_ids)
  known = np.abs(image_table).sum(axis=1) > 0
  assert image_table.shape[1] == 32 and known.sum() == summary.item_images[
      "PretrainTrainer"].decoded
  assert not export_testing.decode_ops(summary.pushed_dir)


def test_a_served_request_with_ids_only_is_scored(image_run):
  config, summary, item_ids, _ = image_run
  with server.serve(server.ServerConfig(model_base_path=config.serving_dir,
                                        port=0)) as handle:
    client.wait_until_available(handle.address, config.model_name)
    ranked = client.rank(handle.address, config.model_name, "any-user",
                         item_ids[:3], history=item_ids[3:5],
                         timestamp=1_600_000_000)
  assert sorted(ranked.item_ids) == sorted(item_ids[:3])
  assert all(0.0 < probability < 1.0 for probability in ranked.probabilities)
  assert ranked.model_version == int(summary.pushed_dir.rstrip("/").split("/")[-1])


def test_both_trainers_wrote_their_early_stopping_curves(image_run):
  _, summary, _, _ = image_run
  pipeline_fixtures.assert_one_epoch_learning_curves(summary, {
      "PretrainTrainer": ("courier", "loss"),
      "Trainer": ("ranking", "auc")})


def test_pushed_ranker_scores_raw_candidates(image_run):
  config, summary, item_ids, _ = image_run
  interactions = contract.load_dataset(config.dataset_dir).interactions
  user = interactions["user_id"].iloc[0]
  pipeline_fixtures.assert_pushed_ranker_scores_raw_candidates(
      summary.pushed_dir, user, (item_ids[0], item_ids[1]), item_ids[2],
      int(interactions["timestamp"].max()))


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
    image_run, tmp_path, stand_in, blessed, failures):
  config, _, _, _ = image_run
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
