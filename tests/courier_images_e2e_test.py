"""End-to-end: COURIER's image path on real H&M product photos.

The H&M importer's purchases of the 12 most bought articles, by the customers
who bought two or more of them, and those 12 articles' real 64x96 photos (a
zip extracted at test time from the shared `images_64x96.zip`). One pipeline
run: the PretrainTrainer decodes the catalogue's images with its Beam step
and pre-trains COURIER with a small CNN on them, the Trainer trains the
ranker on COURIER's frozen item and image embeddings, the Evaluator scores
it and the Pusher ships it (gate open: one epoch on 50 users). Then the
project's gRPC server serves the pushed ranker and the client scores
candidates by id: the export holds the image embeddings and has no op that
decodes an image.
"""

import zipfile

import numpy as np
import pytest

from data import contract
from data import importers
from models.ctr import export as ctr_export
from models.ctr import trainer as ctr_trainer
from models.ctr import export_testing
from serving import client
from serving import server
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
