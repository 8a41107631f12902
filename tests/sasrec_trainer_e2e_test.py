"""End-to-end: `sasrec` trained per sequence by the Trainer's `run_fn`.

Like `tests/classical_families_e2e_test.py`, no pipeline run of its own:
SASRec's Trainer (`models.sasrec_trainer`) runs through `run_fn` on the
Transform output of the shared blessed run, and its export is checked the
way the Evaluator reads it. The blessed run's own Trainer (two-tower,
`models.retrieval_trainer`) stopped early on validation too; both wrote
their learning curve.
"""

import glob
import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from models import families
from models import learning_curve
from models import serving_names
from models import trainer
from tfx_pipeline import retrieval_metrics

pytestmark = pytest.mark.e2e

# A few epochs of small batches: the sample has 120 users.
_HPARAMS = {"epochs": 5, "positions_per_batch": 256}


def _fn_args(summary, model_uri: str) -> tfx.components.FnArgs:
  """What the Trainer hands `run_fn` for sasrec in the blessed run."""
  examples = standard_artifacts.Examples()
  examples.uri = summary.artifacts["Transform.transformed_examples"]
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  return tfx.components.FnArgs(
      train_files=[io_utils.all_files_pattern(uri) for uri in
                   artifact_utils.get_split_uris([examples], "train")],
      transform_output=summary.artifacts["Transform.transform_graph"],
      serving_model_dir=os.path.join(model_uri, "Format-Serving"),
      model_run_dir=os.path.join(model_uri, "model_run"),
      custom_config={families.FAMILY_KEY: "sasrec",
                     families.HPARAMS_KEY: dict(_HPARAMS),
                     families.SEED_KEY: 0},
      data_accessor=fn_args_utils.DataAccessor(
          tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
              [examples], []),
          record_batch_factory=None, data_view_decode_fn=None))


@pytest.fixture(scope="module")
def trained(sample_runs, tmp_path_factory):
  """(FnArgs, blessed run summary) of a `run_fn`-trained sasrec model."""
  fn_args = _fn_args(sample_runs.blessed,
                     str(tmp_path_factory.mktemp("sasrec")))
  trainer.run_fn(fn_args)
  return fn_args, sample_runs.blessed


def test_evaluate_beats_most_popular_on_recall_at_50(trained):
  fn_args, summary = trained
  files = glob.glob(os.path.join(
      summary.artifacts["InteractionExampleGen.examples"], "Split-eval", "*.gz"))
  examples = [record.numpy() for record in
              tf.data.TFRecordDataset(files, compression_type="GZIP")]
  ranks = tf.saved_model.load(fn_args.serving_model_dir).signatures[
      serving_names.EVALUATE](examples=tf.constant(examples))
  model, popular = (retrieval_metrics.recall_at_k(ranks[name].numpy(),
                                                  50).mean()
                    for name in (serving_names.TARGET_RANK,
                                 serving_names.POPULARITY_TARGET_RANK))
  print(f"sasrec: recall@50 {model:.4f}, most-popular {popular:.4f}")
  assert model > popular


def test_sasrec_and_two_tower_trainers_write_their_learning_curves(trained):
  fn_args, summary = trained
  sasrec = learning_curve.read(fn_args.model_run_dir)
  assert (sasrec.family, sasrec.metric) == ("sasrec", "recall_at_50")
  steps = [point.step for point in sasrec.points]
  assert steps == list(range(1, len(steps) + 1))
  assert len(steps) <= _HPARAMS["epochs"] and sasrec.best in steps
  assert sasrec.points[sasrec.best - 1].validation == max(
      point.validation for point in sasrec.points)
  two_tower = summary.learning_curves["Trainer"]
  assert (two_tower.family, two_tower.best) == (
      "two_tower", two_tower.chosen["epoch"])
