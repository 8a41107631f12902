"""Small real datasets and configs for end-to-end pipeline tests."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline import run_summary
from tfx_pipeline.data import contract
from tfx_pipeline.data import importers

# Enough users for every slice bucket and a non-trivial catalogue, small
# enough that one pipeline run takes about a minute on two cores.
SAMPLE_USERS = 120
FAST_HPARAMS = {"epochs": 2, "batch_size": 128}


def write_movielens_sample(directory: pathlib.Path, n_users: int = SAMPLE_USERS,
                           transform=None) -> pathlib.Path:
  """Writes the first `n_users` MovieLens-100K users as a contract directory.

  Args:
    directory: where to write.
    n_users: users to keep, by ascending numeric id.
    transform: optional function applied to the interactions frame, e.g. to
      make the data bad on purpose or to add a `query` column.
  """
  source = importers.default_source_root()
  if not (source / "movielens-100k").is_dir():
    pytest.skip(f"MovieLens-100K not found under {source}")
  dataset = importers.IMPORTERS["movielens-100k"](source)
  keep = dataset.interactions["user_id"].astype(int) <= n_users
  interactions = dataset.interactions[keep].reset_index(drop=True)
  if transform is not None:
    interactions = transform(interactions)
  return contract.write_dataset(
      contract.Dataset(interactions=interactions, items=dataset.items,
                       users=dataset.users), directory)


def sample_config(workspace: pathlib.Path, dataset_dir: pathlib.Path,
                  **overrides) -> config_lib.PipelineConfig:
  return config_lib.PipelineConfig(
      pipeline_name="e2e", dataset="contract", dataset_dir=str(dataset_dir),
      workspace=str(workspace), hparams=dict(FAST_HPARAMS), **overrides)


def run_ranking_sample(tmp_path_factory, model_family: str, n_users: int,
                       hparams: dict, pretrain_hparams: dict, transform=None):
  """Runs a ranking family, open-gated, on the first `n_users` MovieLens users.

  `transform` edits the sample's interactions (`write_movielens_sample`).

  Returns:
    The config and `run_summary.summarize` of the run.
  """
  dataset_dir = write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"), n_users=n_users,
      transform=transform)
  config = sample_config(
      tmp_path_factory.mktemp("workspace"), dataset_dir,
      model_family=model_family, pretrain_hparams=pretrain_hparams,
      ranking_auc_lower_bound=0.0, ranking_log_loss_upper_bound=10.0)
  config.hparams = hparams
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path)


def assert_ranking_run_pushed(config: config_lib.PipelineConfig, summary,
                              n_users: int) -> None:
  """A ranking family's run on a `write_movielens_sample` of `n_users`.

  Pre-training, training, AUC/log-loss evaluation and push all completed, with
  no ScaNN index (a ranker scores given candidates), over one positive and
  `config.ctr_negatives` sampled negatives per eval user.
  """
  states = {run.component: run.state for run in summary.components}
  assert {"PretrainTrainer", "Trainer", "Evaluator", "Pusher"} <= set(states)
  assert "ScannIndexGen" not in states
  assert all(state == "complete" for state in states.values()), states
  overall = summary.metrics["overall"]
  assert overall["example_count"] == n_users * (1 + config.ctr_negatives)
  assert overall["mean_label"] == pytest.approx(1 / (1 + config.ctr_negatives))
  assert 0.0 <= overall["auc"] <= 1.0
  assert overall["binary_crossentropy"] > 0.0
  assert summary.blessed is True and summary.pushed_dir


def assert_pushed_ranker_scores_raw_candidates(pushed_dir: str) -> None:
  """The pushed ranker scores MovieLens candidates and unknown ids, raw."""
  loaded = tf.saved_model.load(pushed_dir)
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
