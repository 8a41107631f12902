"""End-to-end: the `gmn` family on a dual-graph sample of Amazon video-games.

Transform splits each history into video and item neighbours, the Trainer
fits GMN, the Evaluator scores full-ranking recall (with the `item_type`
slice giving video retrieval), and the model is indexed and pushed. The gate
is open: a two-epoch model on 100 users proves the wiring, not quality.
"""

import pytest
import tensorflow as tf

from data import contract
from data import dual_graph
from data import importers
from models import serving_names
from tests import prerequisites
from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary

pytestmark = pytest.mark.e2e

SAMPLE_USERS = 100
TINY_GMN = {"epochs": 2, "batch_size": 128, "embedding_dim": 16,
            "tower_units": [32, 16], "num_preferences": 2, "max_neighbours": 8}


@pytest.fixture(scope="module")
def gmn_run(tmp_path_factory):
  source = prerequisites.shared_data_root("amazon-video-games")
  log = importers.IMPORTERS["amazon-video-games"](source).interactions
  users = dual_graph.shared_users(log)[:SAMPLE_USERS]
  sample = log[log["user_id"].isin(users)].reset_index(drop=True)
  dataset_dir = contract.write_dataset(contract.Dataset(interactions=sample),
                                       tmp_path_factory.mktemp("dual_graph"))
  config = config_lib.PipelineConfig(
      pipeline_name="gmn-e2e", dataset="contract", dataset_dir=str(dataset_dir),
      workspace=str(tmp_path_factory.mktemp("workspace")), model_family="gmn",
      hparams=dict(TINY_GMN),
      gate=config_lib.GateConfig(lower_bound=0.0, max_regression=1.0),
      baselines=config_lib.BaselinesConfig(families=[]))
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path)


def test_gmn_trains_evaluates_indexes_and_pushes(gmn_run):
  _, summary = gmn_run
  states = {run.component: run.state for run in summary.components}
  assert {"Trainer", "Evaluator", "ScannIndexGen", "Pusher"} <= set(states)
  assert all(state == "complete" for state in states.values()), states
  assert summary.blessed is True and summary.pushed_dir
  video_slice = summary.metrics["item_type=video"]
  assert 0.0 <= video_slice["target_rank/recall_at_50"] <= 1.0
  assert video_slice["target_rank/example_count"] > 0


def test_pushed_gmn_answers_a_raw_request_with_both_sides(gmn_run):
  _, summary = gmn_run
  loaded = tf.saved_model.load(summary.pushed_dir)
  history = ["video:1", "item:1", "video:2"]
  response = loaded.signatures[serving_names.retrieve_top(10)](
      user_id=tf.constant(["u"]), history_item_ids=tf.constant([history]),
      timestamp=tf.constant([0], tf.int64))
  ids = set(response[serving_names.ITEM_IDS].numpy().astype(str)[0])
  assert len(ids) == 10 and not ids & set(history)
