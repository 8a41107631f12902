"""Tests for the embedding benchmark's closed-form rows and its verdict."""

import numpy as np
import pytest

from benchmarks import embedding_benchmark
from models.item_item import fitters as item_item_fitters
from offline_eval import datasets

# Items 1..6 come in pairs (1, 2), (3, 4), (5, 6): whoever chose the first of
# a pair chose the second next.
_SEQUENCES = [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 1, 2], [1, 2, 5, 6],
              [3, 4, 1, 2]]
_VALID_ITEMS = [5, 1, 3, 3, 5]


def _dataset(test_items) -> datasets.SequenceDataset:
  num_items = 7
  return datasets.SequenceDataset(
      name="pairs", user_ids=np.arange(len(_SEQUENCES)).astype(str),
      item_ids=np.array([""] + [str(item) for item in range(1, num_items)]),
      train_sequences=[np.array(sequence) for sequence in _SEQUENCES],
      valid_items=np.array(_VALID_ITEMS), test_items=np.array(test_items),
      item_categories=np.zeros((num_items, 1), np.int64), category_names=[""],
      item_tokens=np.zeros((num_items, 1), np.int64), token_names=[""])


@pytest.mark.parametrize("family", embedding_benchmark.CLASSICAL)
def test_classical_rows_never_read_the_test_items(family):
  scorer, chosen = embedding_benchmark.fit_classical(
      family, _dataset([6, 2, 4, 4, 6]), history_length=1)
  other_scorer, other_chosen = embedding_benchmark.fit_classical(
      family, _dataset([1, 1, 1, 1, 1]), history_length=1)
  assert chosen["hparams"] == other_chosen["hparams"]
  assert ([row["validation"] for row in chosen["validation"]]
          == [row["validation"] for row in other_chosen["validation"]])
  users = np.arange(len(_SEQUENCES))
  np.testing.assert_array_equal(scorer.score_all(users),
                                other_scorer.score_all(users))
  # Each user's newest train item is a validation target.
  assert chosen["validation_users"] == len(_SEQUENCES)
  # The query is the validation item (history_length 1): its pair comes
  # first.
  assert list(scorer.score_all(users).argmax(axis=1)) == [6, 2, 4, 4, 6]


def test_validation_fit_leaves_out_each_users_newest_train_item(monkeypatch):
  family = item_item_fitters.FITTERS["item_knn"]
  fitted = []
  monkeypatch.setitem(
      item_item_fitters.FITTERS, "item_knn",
      embedding_benchmark.item_item.dataclasses.replace(
          family, fit=lambda train, config: fitted.append(train)
          or family.fit(train, config)))
  embedding_benchmark.fit_classical("item_knn", _dataset([6, 2, 4, 4, 6]),
                                    history_length=2)
  newest = [(user, sequence[-1]) for user, sequence in enumerate(_SEQUENCES)]
  # Every setting is fitted on the tuning rows, then the chosen one on all.
  tuning_fit, final_fit = fitted[0], fitted[-1]
  assert [tuning_fit[user, item] for user, item in newest] == [0] * 5
  assert [final_fit[user, item] for user, item in newest] == [1] * 5
  assert final_fit.sum() - tuning_fit.sum() == len(newest)


def _stats(mean, std=0.0):
  return {embedding_benchmark.probes.NEXT_ITEM_TASK["name"]:
          {"mean": mean, "std": std}}


def test_verdict_names_the_strongest_baseline_and_who_beats_it_beyond_std():
  metrics = {"most_popular": _stats(0.23), "ease": _stats(0.40),
             "item_knn": _stats(0.33), "random": _stats(0.04),
             "two_tower": _stats(0.42, 0.03), "guim_k1": _stats(0.44, 0.01)}
  assert embedding_benchmark.verdict(metrics) == (
      "Strongest baseline by next_item_recall@50: ease (0.4000); models "
      "above it by more than their std: guim_k1")


def test_markdown_says_when_one_training_seed_gives_no_training_std():
  metrics = {"most_popular": _stats(0.23), "ease": _stats(0.40),
             "two_tower": _stats(0.42)}
  result = {"dataset": "pairs", "metrics": metrics, "train_seeds": [0]}
  table = embedding_benchmark.markdown(result)
  assert "| ease | 0.4000 ± 0.0000 |" in table
  assert ("models above it by more than their std: two_tower (one training "
          "seed") in table
  assert "one training seed" not in embedding_benchmark.markdown(
      dict(result, train_seeds=[0, 1]))


def test_diversity_quartiles_count_distinct_train_categories():
  dataset = _dataset([6, 2, 4, 4, 6])
  # Categories: items 1, 2 -> 1; 3, 4 -> 2; 5 -> 3; 6 -> 4.
  dataset.item_categories[:, 0] = [0, 1, 1, 2, 2, 3, 4]
  # Distinct categories per user: 2, 3, 3, 3, 2; quartile edges 2, 3, 3,
  # and a user at an edge is in the lower quartile.
  np.testing.assert_array_equal(
      embedding_benchmark.diversity_quartiles(dataset), [1, 2, 2, 2, 1])
  dataset.item_categories[:, 0] = [0, 1, 2, 3, 4, 5, 6]
  # Now 4, 4, 4, 4, 2 distinct: edges 4, 4, 4.
  np.testing.assert_array_equal(
      embedding_benchmark.diversity_quartiles(dataset), [1, 1, 1, 1, 1])


def test_quartile_metrics_rank_each_quartiles_users_only(monkeypatch):
  data = embedding_benchmark.probes.TaskData(
      next_items=np.array([1, 2, 1, 2]), known_items=[np.array([], int)] * 4)
  # Item 1 always outscores item 2: users whose target is 1 hit at k=1.
  scores = lambda users: np.tile([0.0, 2.0, 1.0], (len(users), 1))
  spec = dict(embedding_benchmark.probes.NEXT_ITEM_TASK, k=1)
  monkeypatch.setattr(embedding_benchmark.probes, "NEXT_ITEM_TASK", spec)
  metrics = embedding_benchmark.quartile_metrics(
      data, np.array([1, 1, 2, 4]), scores, num_items=3)
  name = spec["name"]
  assert metrics[f"{name}/diversity_q1"] == 0.5
  assert metrics[f"{name}/diversity_q2"] == 1.0
  assert metrics[f"{name}/diversity_q4"] == 0.0


def test_seconds_to_quality_is_the_first_epoch_within_one_percent_of_best():
  best = embedding_benchmark.training.BestEpoch(
      epoch=4, score=0.200, losses=[1.0] * 5,
      scores=[0.100, 0.190, 0.1985, 0.200, 0.150],
      seconds=[10.0, 20.0, 30.0, 40.0, 50.0])
  assert embedding_benchmark.seconds_to_quality(best) == 30.0
  assert embedding_benchmark.seconds_to_quality(best, share=1.0) == 40.0
