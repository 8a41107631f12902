"""End-to-end: `ease` and `item_knn` trained by the Trainer's `run_fn`.

No pipeline run of their own: each family is trained through
`models.trainer.run_fn` on the Transform output of the shared blessed run
(`pipeline_fixtures.sample_runs`), exactly as the pipeline's Trainer would.
Its export is then checked the way the Evaluator, the Pusher's consumers and
the gRPC server use it: `evaluate` on the raw eval examples beats
most-popular on Recall@50, the SavedModel loads and answers in a bare
TensorFlow process, and `serving.server` serves it like any retrieval model.
The pipeline topology of these families (no ScaNN index, the Trainer's
model pushed) is checked in `tfx_pipeline/pipeline_test.py`.
"""

import glob
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.trainer import fn_args_utils
from tfx.components.util import tfxio_utils
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from models import export_testing
from models import families
from models import serving_names
from models import trainer
from serving import testing_grpc
from tfx_pipeline import retrieval_metrics

pytestmark = pytest.mark.e2e

# The Trainer's file layout: the Pusher copies `Format-Serving/`.
_SERVING_SUBDIR = "Format-Serving"
_RECALL_K = 50


def _transformed_examples(uri: str) -> standard_artifacts.Examples:
  examples = standard_artifacts.Examples()
  examples.uri = uri
  examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
  return examples


def _fn_args(summary, family: str, model_uri: str):
  """What the Trainer hands `run_fn` for `family` in the blessed run."""
  examples = [_transformed_examples(
      summary.artifacts["Transform.transformed_examples"])]
  return tfx.components.FnArgs(
      train_files=[io_utils.all_files_pattern(uri) for uri in
                   artifact_utils.get_split_uris(examples, "train")],
      transform_output=summary.artifacts["Transform.transform_graph"],
      serving_model_dir=os.path.join(model_uri, _SERVING_SUBDIR),
      custom_config={families.FAMILY_KEY: family, families.HPARAMS_KEY: {},
                     families.SEED_KEY: 0},
      data_accessor=fn_args_utils.DataAccessor(
          tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact(
              examples, []),
          record_batch_factory=None, data_view_decode_fn=None))


@pytest.fixture(scope="module", params=["ease", "item_knn"])
def trained(request, sample_runs, tmp_path_factory):
  """(family, serving dir, blessed run summary) of a `run_fn`-trained model."""
  model_uri = str(tmp_path_factory.mktemp(request.param))
  trainer.run_fn(_fn_args(sample_runs.blessed, request.param, model_uri))
  return (request.param, os.path.join(model_uri, _SERVING_SUBDIR),
          sample_runs.blessed)


def _raw_eval_examples(summary) -> list[bytes]:
  files = glob.glob(os.path.join(summary.artifacts["InteractionExampleGen.examples"],
                                 "Split-eval", "*.gz"))
  return [record.numpy() for record in
          tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_evaluate_beats_most_popular_on_recall_at_50(trained):
  family, serving_dir, summary = trained
  examples = _raw_eval_examples(summary)
  ranks = tf.saved_model.load(serving_dir).signatures[serving_names.EVALUATE](
      examples=tf.constant(examples))
  model = retrieval_metrics.recall_at_k(
      ranks[serving_names.TARGET_RANK].numpy(), _RECALL_K).mean()
  popular = retrieval_metrics.recall_at_k(
      ranks[serving_names.POPULARITY_TARGET_RANK].numpy(), _RECALL_K).mean()
  print(f"{family}: recall@{_RECALL_K} {model:.4f}, most-popular "
        f"{popular:.4f} on {len(examples)} eval users")
  assert model > popular


def test_loads_and_answers_in_a_bare_tensorflow_process(trained):
  _, serving_dir, summary = trained
  export_testing.run_in_bare_tensorflow(f"""
      import tensorflow as tf
      loaded = tf.saved_model.load({serving_dir!r})
      top = loaded.signatures["serving_default"](
          user_id=tf.constant(["1"]), history_item_ids=tf.constant([["50"]]),
          timestamp=tf.constant([881250949], tf.int64))
      assert top["item_ids"].shape == (1, 10), top
      assert b"50" not in top["item_ids"].numpy()[0].tolist()
      ranks = loaded.signatures["evaluate"](
          examples=tf.constant({_raw_eval_examples(summary)[:3]!r}))
      assert ranks["target_rank"].shape == (3,), ranks
      """, cwd=os.path.dirname(serving_dir))


def test_the_grpc_server_answers_retrieve_and_query_embedding(trained,
                                                             tmp_path):
  _, serving_dir, _ = trained
  with testing_grpc.serve_version_1(pathlib.Path(serving_dir),
                                    tmp_path) as handle:
    with testing_grpc.open_stubs(handle.address) as stubs:
      top = stubs.prediction.Predict(testing_grpc.predict_request(
          ["1"], [["50", "181"]]), timeout=30)
      embedding = stubs.prediction.Predict(testing_grpc.predict_request(
          ["1"], [["50", "181"]], signature=serving_names.QUERY_EMBEDDING),
          timeout=30)
  item_ids, scores = testing_grpc.retrieved(top)
  assert len(item_ids) == 10 and not {"50", "181"} & set(item_ids)
  assert np.all(np.diff(scores) <= 0)
  # The query is the history's counts per item index: two items.
  query = tf.make_ndarray(embedding.outputs[serving_names.EMBEDDING])
  assert query.sum() == 2
