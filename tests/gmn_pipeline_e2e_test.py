"""End-to-end: `gmn` beside `lightgcn` on Amazon Books + Movies.

A sample of the users of `amazon-books-movies` active on both sides (Movies &
TV the videos, Books the items) goes through the pipeline as a contract log
with `item_type`: Transform splits each history into video and item
neighbours, the Trainer fits GMN on the train graph, LightGCN, its graph
baseline, is trained beside it by its own Trainer and scored by its own
Evaluator, ModelSelector picks the better on validation carved from train
and the Pusher pushes that pick. (The classical baselines' Trainers, gate
and selection are checked in `tests/classical_families_e2e_test.py`.) The
gate is open: two-epoch models on 100 users prove the wiring, not quality
(benchmarks/gmn.py measures that).
"""

import filecmp
import os

import pytest
import tensorflow as tf

from data import contract
from data import dual_graph
from data import importers
from models import export_testing
from models import serving_names
from tests import prerequisites
from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary

pytestmark = pytest.mark.e2e

DATASET = "amazon-books-movies"
SAMPLE_USERS = 100
TINY_GMN = {"epochs": 2, "batch_size": 128, "embedding_dim": 16,
            "tower_units": [32, 16], "num_preferences": 2, "max_neighbours": 8}
TINY_LIGHTGCN = {"epochs": 2, "batch_size": 256, "embedding_dim": 16}
BASELINES = ["lightgcn"]
_SERVING_SUBDIR = "Format-Serving"


@pytest.fixture(scope="module")
def gmn_run(tmp_path_factory):
  log = importers.IMPORTERS[DATASET](
      prerequisites.shared_data_root(DATASET)).interactions
  users = dual_graph.shared_users(log)[:SAMPLE_USERS]
  sample = log[log["user_id"].isin(users)].reset_index(drop=True)
  dataset_dir = contract.write_dataset(contract.Dataset(interactions=sample),
                                       tmp_path_factory.mktemp("dual_graph"))
  config = config_lib.PipelineConfig(
      pipeline_name="gmn-e2e", dataset="contract", dataset_dir=str(dataset_dir),
      workspace=str(tmp_path_factory.mktemp("workspace")), model_family="gmn",
      hparams=dict(TINY_GMN),
      gate=config_lib.GateConfig(lower_bound=0.0, max_regression=1.0),
      baselines=config_lib.BaselinesConfig(
          families=list(BASELINES), hparams={"lightgcn": dict(TINY_LIGHTGCN)}))
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path), sample


def test_gmn_and_its_baselines_train_evaluate_and_the_pick_is_pushed(gmn_run):
  _, summary, _ = gmn_run
  states = {run.component: run.state for run in summary.components}
  expected = {"Trainer", "Evaluator", "ScannIndexGen", "ModelSelector",
              "Pusher"} | {f"{component}_{family}" for family in BASELINES
                           for component in ("BaselineTrainer", "Evaluator")}
  assert expected <= set(states), states
  assert all(state == "complete" for state in states.values()), states
  video_slice = summary.metrics["item_type=video"]
  assert 0.0 <= video_slice["target_rank/recall_at_50"] <= 1.0
  assert video_slice["target_rank/example_count"] > 0
  assert set(BASELINES) <= set(summary.baseline_metrics)
  selection = summary.selection
  assert [c.label for c in selection.candidates] == ["gmn"] + BASELINES
  assert all(c.validation is not None for c in selection.candidates)
  assert summary.blessed is True and summary.pushed_dir
  assert filecmp.cmp(
      os.path.join(selection.selected_candidate.uri, _SERVING_SUBDIR,
                   "saved_model.pb"),
      os.path.join(summary.pushed_dir, "saved_model.pb"), shallow=False)


def test_pushed_model_answers_a_raw_request_with_both_sides(gmn_run):
  _, summary, sample = gmn_run
  loaded = tf.saved_model.load(summary.pushed_dir)
  user_rows = sample[sample["user_id"] == sample["user_id"].iloc[0]]
  history = (list(user_rows["item_id"][user_rows["item_type"] == "video"][:2]) +
             list(user_rows["item_id"][user_rows["item_type"] == "item"][:1]))
  response = loaded.signatures[serving_names.retrieve_top(10)](
      user_id=tf.constant([user_rows["user_id"].iloc[0]]),
      history_item_ids=tf.constant([history]),
      timestamp=tf.constant([0], tf.int64))
  ids = set(response[serving_names.ITEM_IDS].numpy().astype(str)[0])
  assert len(ids) == 10 and not ids & set(history)


def test_lightgcn_export_serves_known_and_unknown_users_in_bare_tensorflow(
    gmn_run):
  _, summary, sample = gmn_run
  serving_dir = os.path.join(summary.artifacts["BaselineTrainer_lightgcn.model"],
                             _SERVING_SUBDIR)
  user = sample["user_id"].iloc[0]
  history = list(sample["item_id"][sample["user_id"] == user][:3])
  export_testing.run_in_bare_tensorflow(f"""
      import tensorflow as tf
      loaded = tf.saved_model.load({serving_dir!r})
      top = loaded.signatures[{serving_names.retrieve_top(10)!r}](
          user_id=tf.constant([{user!r}, "never-seen-user"]),
          history_item_ids=tf.constant([{history!r}, {history!r}]),
          timestamp=tf.constant([0, 0], tf.int64))
      ids = top[{serving_names.ITEM_IDS!r}].numpy().astype(str)
      assert ids.shape == (2, 10), ids
      assert not set(ids.ravel()) & set({history!r}), ids
      """, cwd=os.path.dirname(serving_dir))
