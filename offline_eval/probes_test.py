"""Tests of the embedding probe tasks on tiny synthetic embeddings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from offline_eval import probes

NUM_USERS = 60
NUM_ITEMS = 41  # index 0 is padding
DIM = 4


def _synthetic(seed: int = 0):
  """Users and items whose first coordinate carries their labels."""
  rng = np.random.default_rng(seed)
  gender = np.where(np.arange(NUM_USERS) % 2 == 0, "F", "M")
  age = 15 + (np.arange(NUM_USERS) % 3) * 20
  users = rng.normal(size=(NUM_USERS, 2, DIM))
  users[:, :, 0] += np.where(gender == "F", 2.0, -2.0)[:, None]
  users[:, :, 1] += (age // 20)[:, None] * 3.0
  item_group = np.arange(NUM_ITEMS) % 2
  items = rng.normal(size=(NUM_ITEMS, DIM))
  items[:, 0] += np.where(item_group == 0, 3.0, -3.0)
  item_labels = np.zeros((NUM_ITEMS, 2), np.int64)
  item_labels[1:, 0] = item_group[1:] + 1
  item_labels[1::4, 1] = 3  # a second label on every fourth item
  pairs = pd.DataFrame({
      "user_index": np.repeat(np.arange(NUM_USERS), 4),
      # Held out: items 1 and 3 are every user's known items.
      "item_index": np.tile([2, 4, 5, 6], NUM_USERS),
  })
  user_is_f = gender[pairs["user_index"]] == "F"
  item_is_even = item_group[pairs["item_index"]] == 0
  pairs["label"] = (user_is_f == item_is_even).astype(int)
  relations = np.array([[i, i + 2] for i in range(1, NUM_ITEMS - 2)])
  data = probes.TaskData(
      next_items=np.full(NUM_USERS, 2),
      known_items=[np.array([1, 3])] * NUM_USERS,
      user_attributes=pd.DataFrame({"gender": gender, "age": age.astype(str),
                                    "occupation": gender}),
      item_labels=item_labels,
      interactions=pairs,
      item_relations={"next_but_one": relations},
  )
  return data, probes.Embeddings(users=users, items=items)


SPECS = [probes.TaskSpec.from_dict(spec) for spec in (
    {"name": "gender_auc", "kind": "user_binary_auc", "attribute": "gender",
     "positive": "F"},
    {"name": "age_f1", "kind": "user_class_f1", "attribute": "age",
     "bins": [20, 40]},
    {"name": "group_f1", "kind": "item_class_f1"},
    {"name": "labels_f1", "kind": "item_multilabel_f1"},
    {"name": "interaction_auc", "kind": "interaction_auc"},
    {"name": "relation_auc", "kind": "relation_auc", "relation": "next_but_one"},
    {"name": "coherence@3", "kind": "neighbour_coherence", "k": 3},
    {"name": "recall@5", "kind": "next_item", "k": 5},
    {"name": "sampled", "kind": "sampled_ranking", "num_negatives": 10,
     "ks": [5]},
)]


def test_probes_are_deterministic_under_a_seed():
  data, embeddings = _synthetic()
  first = probes.run_tasks(SPECS, data, embeddings, seed=3)
  again = probes.run_tasks(SPECS, data, embeddings, seed=3)
  assert first == again
  other = probes.run_tasks(SPECS, data, embeddings, seed=4)
  assert first != other


def test_informative_embeddings_score_high_and_random_ones_near_chance():
  data, embeddings = _synthetic()
  informative = probes.run_tasks(SPECS, data, embeddings, seed=0)
  assert informative["gender_auc"] > 0.95
  assert informative["age_f1"] > 0.9
  assert informative["group_f1"] > 0.9
  assert informative["interaction_auc"] > 0.95
  assert informative["coherence@3"] > 0.9
  rng = np.random.default_rng(1)
  random = probes.Embeddings(users=rng.normal(size=embeddings.users.shape),
                             items=rng.normal(size=embeddings.items.shape))
  chance = probes.run_tasks(SPECS, data, random, seed=0)
  assert chance["gender_auc"] < 0.8
  assert chance["interaction_auc"] < 0.8


def test_interaction_probe_refuses_pairs_the_models_trained_on():
  data, embeddings = _synthetic()
  spec = probes.TaskSpec("interaction_auc", "interaction_auc")
  probes.run_task(spec, data, embeddings, seed=0)
  trained = data.interactions.assign(item_index=3)
  with pytest.raises(ValueError, match="held-out pairs only"):
    probes.run_task(spec, dataclasses.replace(data, interactions=trained),
                    embeddings, seed=0)


def test_neighbour_coherence_known_value():
  # Items 1, 2 share label 1 and lie together; item 3 (label 2) lies apart.
  data = probes.TaskData(item_labels=np.array([[0], [1], [1], [2]]))
  items = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
  embeddings = probes.Embeddings(users=np.zeros((1, 1, 2)), items=items)
  spec = probes.TaskSpec("coherence@1", "neighbour_coherence", {"k": 1})
  # Items 1 and 2 find each other; item 3's nearest (item 2) differs.
  assert probes.run_task(spec, data, embeddings, 0) == {
      "coherence@1": pytest.approx(2 / 3)}


def test_next_item_scores_by_the_best_user_vector():
  # User vector 2 points at item 2; vector 1 at item 1, which is known.
  users = np.array([[[1.0, 0.0], [0.0, 1.0]]])
  items = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
  embeddings = probes.Embeddings(users=users, items=items)
  data = probes.TaskData(next_items=np.array([2]), known_items=[np.array([1])])
  spec = probes.TaskSpec("recall@1", "next_item", {"k": 1})
  assert probes.run_task(spec, data, embeddings, 0) == {"recall@1": 1.0}
  np.testing.assert_allclose(embeddings.scores(np.array([0])),
                             [[0.0, 2.0, 1.0, 0.5]])


def test_next_item_ranks_among_the_catalogue_only():
  # Item 3 outscores the target, item 2, but has no train positive.
  embeddings = probes.Embeddings(users=np.array([[[1.0, 0.0]]]),
                                 items=np.array([[0.0, 0.0], [0.0, 0.0],
                                                 [1.0, 0.0], [2.0, 0.0]]))
  spec = probes.TaskSpec("recall@1", "next_item", {"k": 1})
  data = probes.TaskData(next_items=np.array([2]), known_items=[np.array([1])])
  assert probes.run_task(spec, data, embeddings, 0) == {"recall@1": 0.0}
  served = dataclasses.replace(
      data, catalogue=np.array([False, True, True, False]))
  assert probes.run_task(spec, served, embeddings, 0) == {"recall@1": 1.0}


def test_user_pooling_mean_and_concat():
  embeddings = probes.Embeddings(users=np.arange(8.0).reshape(2, 2, 2),
                                 items=np.zeros((1, 2)))
  np.testing.assert_allclose(probes.pooled_users(embeddings, "mean"),
                             [[1.0, 2.0], [5.0, 6.0]])
  assert probes.pooled_users(embeddings, "concat").shape == (2, 4)
  with pytest.raises(ValueError, match="user_pooling"):
    probes.pooled_users(embeddings, "max")


def test_unknown_task_kind_is_rejected():
  with pytest.raises(ValueError, match="unknown task kind"):
    probes.TaskSpec.from_dict({"name": "x", "kind": "telepathy"})
