"""Small real datasets, configs and pipeline runs for end-to-end tests.

`sample_runs` is a session fixture (registered in the root `conftest.py`):
the pipeline and report tests read the same two runs instead of paying a
pipeline each.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tfx.dsl.compiler import compiler
from tfx.proto.orchestration import executable_spec_pb2
from tfx.proto.orchestration import pipeline_pb2

from data import contract
from data import importers
from models import serving_names
from offline_eval import probes
from tests import prerequisites
from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.report import run_summary

# Enough users for every slice bucket and a non-trivial catalogue, small
# enough that one pipeline run takes about a minute on two cores.
SAMPLE_USERS = 120
FAST_HPARAMS = {"epochs": 2, "batch_size": 128}
# The blessed run also runs the embedding benchmark with one baseline.
BENCHMARK = config_lib.EmbeddingBenchmarkConfig(
    enabled=True, tasks=probes.MOVIELENS_TASKS, seeds=[0],
    baselines={"guim_k2": {"model_family": "guim",
                           "hparams": {"num_interests": 2}}})
# A recall@50 bound no model can reach: the gate must fail.
UNREACHABLE_BOUND = 1.01


def write_movielens_sample(directory: pathlib.Path, n_users: int = SAMPLE_USERS,
                           transform=None) -> pathlib.Path:
  """Writes the first `n_users` MovieLens-100K users as a contract directory.

  Args:
    directory: where to write.
    n_users: users to keep, by ascending numeric id.
    transform: optional function applied to the interactions frame, e.g. to
      make the data bad on purpose or to add a `query` column.
  """
  source = prerequisites.shared_data_root("movielens-100k")
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
  """A fast config of the sample. Classical baselines cost two Trainers and
  Evaluators a run, so only the runs that check them ask for them."""
  return config_lib.PipelineConfig(**{
      "pipeline_name": "e2e", "dataset": "contract",
      "dataset_dir": str(dataset_dir), "workspace": str(workspace),
      "hparams": dict(FAST_HPARAMS),
      "baselines": config_lib.BaselinesConfig(families=[]), **overrides})


def beam_args_by_node(
    config: config_lib.PipelineConfig) -> dict[str, list[str]]:
  """Node id -> Beam args, for every node the local IR runs with Beam."""
  ir = compiler.Compiler().compile(pipeline_lib.create_pipeline(config))
  deployment = pipeline_pb2.IntermediateDeploymentConfig()
  ir.deployment_config.Unpack(deployment)
  beam_args = {}
  for node, spec in deployment.executor_specs.items():
    beam_spec = executable_spec_pb2.BeamExecutableSpec()
    if spec.Unpack(beam_spec):
      beam_args[node] = list(beam_spec.beam_pipeline_args)
  return beam_args


def pushed_versions(push_dir: str) -> list[str]:
  return sorted(os.listdir(push_dir)) if os.path.isdir(push_dir) else []


@dataclasses.dataclass(frozen=True)
class SampleRuns:
  """Two runs of the retrieval pipeline on one MovieLens sample and workspace.

  Attributes:
    workspace: the shared workspace.
    dataset_dir: the sample's contract directory.
    blessed_config: the first run, with the embedding benchmark (`BENCHMARK`);
      nothing was blessed before it, so it is blessed and pushed.
    blessed: its `run_summary.summarize`.
    failing_config: a second run whose gate needs `UNREACHABLE_BOUND`.
    failing: its summary; its Evaluator compared it with the first model.
    versions_before_failing: pushed versions after the first run.
    versions_after_failing: pushed versions right after the second run.
  """
  workspace: pathlib.Path
  dataset_dir: pathlib.Path
  blessed_config: config_lib.PipelineConfig
  blessed: run_summary.RunSummary
  failing_config: config_lib.PipelineConfig
  failing: run_summary.RunSummary
  versions_before_failing: list[str]
  versions_after_failing: list[str]


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> SampleRuns:
  dataset_dir = write_movielens_sample(
      tmp_path_factory.mktemp("movielens_sample"))
  workspace = tmp_path_factory.mktemp("workspace")
  blessed_config = sample_config(workspace, dataset_dir,
                                 embedding_benchmark=BENCHMARK)
  local_runner.run(blessed_config)
  blessed = run_summary.summarize(blessed_config.metadata_path)
  versions = pushed_versions(blessed_config.push_dir)
  failing_config = sample_config(
      workspace, dataset_dir,
      gate=config_lib.GateConfig(lower_bound=UNREACHABLE_BOUND))
  local_runner.run(failing_config)
  return SampleRuns(workspace, dataset_dir, blessed_config, blessed,
                    failing_config,
                    run_summary.summarize(failing_config.metadata_path),
                    versions, pushed_versions(blessed_config.push_dir))


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
      gate=config_lib.GateConfig(ranking_auc_lower_bound=0.0,
                                 ranking_log_loss_upper_bound=10.0))
  config.hparams = hparams
  local_runner.run(config)
  return config, run_summary.summarize(config.metadata_path)


def assert_ranking_run_pushed(config: config_lib.PipelineConfig, summary,
                              n_users: int) -> None:
  """A ranking family's run on a `write_movielens_sample` of `n_users`.

  Pre-training, training, AUC/log-loss evaluation and push all completed, with
  no ScaNN index (a ranker scores given candidates), over one positive and
  `config.examples.ctr_negatives` sampled negatives per eval user.
  """
  states = {run.component: run.state for run in summary.components}
  assert {"PretrainTrainer", "Trainer", "Evaluator", "Pusher"} <= set(states)
  assert "ScannIndexGen" not in states
  assert all(state == "complete" for state in states.values()), states
  overall = summary.metrics["overall"]
  assert overall["example_count"] == n_users * (1 + config.examples.ctr_negatives)
  assert overall["mean_label"] == pytest.approx(1 / (1 + config.examples.ctr_negatives))
  assert 0.0 <= overall["auc"] <= 1.0
  assert overall["binary_crossentropy"] > 0.0
  assert summary.blessed is True and summary.pushed_dir


def assert_one_epoch_learning_curves(summary, expected: dict) -> None:
  """Each Trainer's learning curve names its family and validation metric
  (`expected`: component -> (family, metric)) and, trained one epoch, kept
  and exported that epoch."""
  curves = summary.learning_curves
  assert {component: (curve.family, curve.metric)
          for component, curve in curves.items()} == expected
  for curve in curves.values():
    assert [point.step for point in curve.points] == [1]
    assert curve.best == curve.chosen["epoch"] == 1


def assert_pushed_ranker_scores_raw_candidates(
    pushed_dir: str, user_id: str = "1", item_ids: tuple[str, str] = ("50", "181"),
    history_item_id: str = "258", timestamp: int = 881250949) -> None:
  """The pushed ranker scores two known candidates of a known user (by
  default MovieLens ids) and an unknown item of an unknown user, raw."""
  loaded = tf.saved_model.load(pushed_dir)
  scores = loaded.signatures[serving_names.DEFAULT](
      user_id=tf.constant([user_id, user_id, "never-seen-user"]),
      item_id=tf.constant([*item_ids, "unknown-item"]),
      history_item_ids=tf.constant([[history_item_id, ""]] * 2 + [["", ""]]),
      timestamp=tf.constant([timestamp] * 3, tf.int64),
  )[serving_names.RANKER_PROBABILITY].numpy()
  assert scores.shape[0] == 3
  assert np.all((scores > 0.0) & (scores < 1.0))
  # Two different candidates for the same user get different scores.
  assert scores[0] != scores[1]
