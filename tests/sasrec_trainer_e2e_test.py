"""End-to-end: `sasrec` trained per sequence by the Trainer's `run_fn`.

Like `tests/classical_families_e2e_test.py`, no pipeline run of its own:
SASRec's Trainer (`models.retrieval.sasrec_trainer`) runs through `run_fn` on the
Transform output of the shared blessed run, and its export is checked the
way the Evaluator reads it. The blessed run's own Trainer (two-tower,
`models.retrieval.trainer`) stopped early on validation too; both wrote
their learning curve.
"""

import glob
import os

import pytest
import tensorflow as tf

from benchmarks import trainer_only
from models import learning_curve
from models import serving_names
from models import trainer
from tfx_pipeline import retrieval_metrics

pytestmark = pytest.mark.e2e

# A few epochs of small batches: the sample has 120 users.
_HPARAMS = {"epochs": 5, "positions_per_batch": 256}


@pytest.fixture(scope="module")
def trained(sample_runs, tmp_path_factory):
  """(Model artifact dir, `trainer_only` record, blessed run summary) of a
  `run_fn`-trained sasrec model."""
  directory = str(tmp_path_factory.mktemp("sasrec"))
  record = trainer_only.train_family(
      sample_runs.blessed, directory, "sasrec", _HPARAMS, seed=0,
      examples=trainer_only.run_examples(sample_runs.blessed))
  return directory, record, sample_runs.blessed


def test_evaluate_beats_most_popular_on_recall_at_50(trained):
  directory, record, summary = trained
  files = glob.glob(os.path.join(
      summary.artifacts["InteractionExampleGen.examples"], "Split-eval", "*.gz"))
  examples = [serialized.numpy() for serialized in
              tf.data.TFRecordDataset(files, compression_type="GZIP")]
  ranks = tf.saved_model.load(os.path.join(
      directory, "Format-Serving")).signatures[serving_names.EVALUATE](
          examples=tf.constant(examples))
  model, popular = (retrieval_metrics.recall_at_k(ranks[name].numpy(),
                                                  50).mean()
                    for name in (serving_names.TARGET_RANK,
                                 serving_names.POPULARITY_TARGET_RANK))
  print(f"sasrec: recall@50 {model:.4f}, most-popular {popular:.4f}")
  assert model > popular
  # The benchmark's record scores the same export the same way.
  assert record["metrics"]["recall_at_50"] == pytest.approx(model)


def test_the_sampled_protocol_scores_the_export_as_the_model_serves_it(
    trained):
  directory, record, summary = trained
  examples = trainer_only.run_examples(summary)
  train, evaluation = examples.train, examples.eval
  served = tf.saved_model.load(os.path.join(directory, "Format-Serving"))
  query_inputs = {"user_id": tf.constant(evaluation.user_ids),
                  "history_item_ids": tf.constant(evaluation.histories),
                  "timestamp": tf.constant(evaluation.timestamps)}
  queries = served.signatures[serving_names.QUERY_EMBEDDING](**query_inputs)[
      serving_names.EMBEDDING].numpy()
  targets = served.signatures[serving_names.CANDIDATE_EMBEDDING](
      item_id=tf.constant(evaluation.item_ids),
      item_title=tf.constant(evaluation.titles),
      item_categories=tf.constant(evaluation.categories))[
          serving_names.EMBEDDING].numpy()
  top = served.signatures[serving_names.retrieve_top(100)](**query_inputs)
  # Where a target is among the served top 100, the served score is the dot
  # product of the two embeddings the protocol scores with.
  checked = 0
  for row, (ranked, scores) in enumerate(zip(
      top[serving_names.ITEM_IDS].numpy(), top[serving_names.SCORES].numpy())):
    if evaluation.item_ids[row] in list(ranked):
      served_score = scores[list(ranked).index(evaluation.item_ids[row])]
      assert queries[row] @ targets[row] == pytest.approx(served_score,
                                                          rel=1e-4, abs=1e-5)
      checked += 1
  assert checked > 0
  sampled = record["sampled_1_plus_100"]
  assert 0 < sampled["hr@10"] <= 1 and sampled["ndcg@10"] <= sampled["hr@10"]
  assert sampled == trainer_only.export_sampled_ranking.evaluate(
      os.path.join(directory, "Format-Serving"), train, evaluation,
      num_negatives=100, seed=0)


def test_sasrec_and_two_tower_trainers_write_their_learning_curves(trained):
  directory, record, summary = trained
  sasrec = learning_curve.read(os.path.join(directory, "model_run"))
  assert (sasrec.family, sasrec.metric) == ("sasrec", "recall_at_50")
  steps = [point.step for point in sasrec.points]
  assert steps == list(range(1, len(steps) + 1))
  assert len(steps) <= _HPARAMS["epochs"] and sasrec.best in steps
  assert (record["epochs_trained"], record["best_epoch"]) == (len(steps),
                                                             sasrec.best)
  assert sasrec.points[sasrec.best - 1].validation == max(
      point.validation for point in sasrec.points)
  two_tower = summary.learning_curves["Trainer"]
  assert (two_tower.family, two_tower.best) == (
      "two_tower", two_tower.chosen["epoch"])
