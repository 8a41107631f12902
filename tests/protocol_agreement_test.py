"""The pipeline's `evaluate` path and `offline_eval` score by one protocol.

Both are fed the same scores, exclusions and targets: the pipeline through a
real `RetrievalServingModule` export, its `evaluate` signature and the TFMA
metric functions of `tfx_pipeline.retrieval_metrics`; the offline side
through `offline_eval.protocols.full_ranking`. Scores are small integers, so
many items tie, users have more train items than the history carries, some
targets repeat a train item, and some items (targets among them) have no
train positives, so the export leaves them out of its catalogue: the cases
where the two used to differ.
"""

import numpy as np
import tensorflow as tf

from data import features
from models import catalogue as catalogue_lib
from models import export_testing
from models.retrieval import export as retrieval_export
from models import serving_names
from offline_eval import protocols
from tfx_pipeline import retrieval_metrics

_NUM_ITEMS = 24  # Real items 1..24; index 0 is padding, 25 is OOV.
_KS = (1, 5, 10)


class _OneUserTower(tf.Module):

  def __init__(self, vector: np.ndarray):
    super().__init__()
    self.vector = tf.constant(vector[np.newaxis, :])

  def __call__(self, inputs):
    return tf.repeat(self.vector, tf.shape(inputs[features.USER_INDEX])[0],
                     axis=0)


def _cases(rng: np.random.Generator, count: int):
  """`(target, history, seen)` item indices; seen holds the history and more."""
  cases = []
  for _ in range(count):
    seen = rng.choice(np.arange(1, _NUM_ITEMS + 1), size=rng.integers(2, 9),
                      replace=False)
    history = seen[-2:]  # the capped history the model reads
    repeat = rng.random() < 0.25
    target = int(rng.choice(seen) if repeat else rng.integers(1, _NUM_ITEMS + 1))
    cases.append((target, history, seen))
  return cases


def _pipeline_metrics(loaded, cases, output: str) -> dict[str, float]:
  examples = tf.constant([export_testing.serialized_example(
      str(target), [str(i) for i in history], [str(i) for i in seen])
                          for target, history, seen in cases])
  ranks = loaded.signatures[serving_names.EVALUATE](
      **{serving_names.EXAMPLES: examples})[output].numpy().astype(np.float64)
  metrics = {}
  for k in _KS:
    metrics[f"recall@{k}"] = retrieval_metrics.recall_at_k(ranks, k).mean()
    metrics[f"ndcg@{k}"] = retrieval_metrics.ndcg_at_k(ranks, k).mean()
  return metrics


def _offline_metrics(scores: np.ndarray, cases,
                     train_counts: np.ndarray) -> dict[str, float]:
  metrics = protocols.full_ranking(
      lambda users: np.repeat(scores[np.newaxis, :], len(users), axis=0),
      np.arange(len(cases)), [np.array([target]) for target, _, _ in cases],
      exclude=[seen for _, _, seen in cases], ks=_KS,
      catalogue=protocols.items_with_positives(
          [np.repeat(np.arange(len(train_counts)), train_counts)],
          len(train_counts)))
  return {name: value for name, value in metrics.items()
          if name.split("@")[0] in ("recall", "ndcg")}


def test_evaluate_signature_and_offline_full_ranking_agree(tmp_path):
  rng = np.random.default_rng(3)
  item_table = rng.integers(-2, 3, size=(_NUM_ITEMS + 2, 2)).astype(np.float32)
  user_vector = np.array([1.0, 0.0], np.float32)
  # Popularity has many ties too; padding and OOV were never trained on,
  # nor about a quarter of the items.
  train_counts = np.concatenate([[0], rng.integers(0, 4, _NUM_ITEMS), [0]])
  module = retrieval_export.RetrievalServingModule(
      export_testing.fake_transform, export_testing.RAW_FEATURE_SPEC,
      _OneUserTower(user_vector),
      lambda inputs: tf.gather(item_table, inputs[features.ITEM_INDEX]),
      catalogue_lib.ItemCatalogue(
          item_ids=np.array([""] + [str(i) for i in range(1, _NUM_ITEMS + 1)]
                            + [""], dtype=object),
          candidate_features={features.ITEM_INDEX: np.arange(_NUM_ITEMS + 2)},
          train_counts=train_counts.astype(np.float64)))
  module.save(str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  cases = _cases(rng, 200)

  model_scores = item_table @ user_vector
  for output, scores in ((serving_names.TARGET_RANK, model_scores),
                         (serving_names.POPULARITY_TARGET_RANK,
                          train_counts.astype(np.float64))):
    pipeline = _pipeline_metrics(loaded, cases, output)
    offline = _offline_metrics(scores, cases, train_counts)
    assert pipeline.keys() == offline.keys()
    for name in offline:
      np.testing.assert_allclose(pipeline[name], offline[name], rtol=1e-6,
                                 err_msg=f"{output} {name}")
