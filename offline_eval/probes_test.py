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


def _category_data(next_items, catalogue=None):
  # Items 1, 2 are category 1; item 3 category 2; item 4 category 3.
  return probes.TaskData(next_items=np.asarray(next_items),
                         known_items=[np.array([1])] * len(next_items),
                         item_labels=np.array([[0], [1], [1], [2], [3]]),
                         catalogue=catalogue)


def test_next_category_ranks_categories_by_their_best_item():
  # One user vector per user; item vectors along two axes.
  items = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0], [2.0, 0.0],
                    [1.0, 1.0]])
  users = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
  embeddings = probes.Embeddings(users=users, items=items)
  # User 0 scores categories 1 (item 1: 3), 2 (2), 3 (1); user 1 scores
  # category 1 (item 2: 1), 3 (1), 2 (0). The known item 1 still counts.
  data = _category_data([2, 3])
  at_1 = probes.TaskSpec("c@1", "next_category", {"k": 1})
  at_2 = probes.TaskSpec("c@2", "next_category", {"k": 2})
  # User 0's category 1 is first; user 1's category 2 is third.
  assert probes.run_task(at_1, data, embeddings, 0) == {"c@1": 0.5}
  assert probes.run_task(at_2, data, embeddings, 0) == {"c@2": 0.5}
  # User 1's next item is in category 3, tied with category 1: a tie counts
  # against the target.
  tied = _category_data([2, 4])
  assert probes.run_task(at_1, tied, embeddings, 0) == {"c@1": 0.5}
  assert probes.run_task(at_2, tied, embeddings, 0) == {"c@2": 1.0}
  # Without item 1 in the catalogue, user 0's category 1 scores by item 2
  # (0) and ranks last.
  served = _category_data([2, 3], catalogue=np.array([0, 0, 1, 1, 1], bool))
  assert probes.run_task(at_2, served, embeddings, 0) == {"c@2": 0.0}
  # The popularity-style scorers get the same task.
  assert probes.run_ranking_tasks([at_1], data, embeddings.scores, 5, 0) == {
      "c@1": 0.5}


def test_conversion_probe_reads_viewed_held_out_pairs_labelled_by_purchase():
  data, embeddings = _synthetic()
  pairs = data.interactions
  views = pairs.assign(event="pv", timestamp=0)
  buys = pairs[pairs["label"] == 1].assign(event="buy", timestamp=1)
  events = pd.concat([views, buys]).drop(columns="label")
  converting = dataclasses.replace(data, interactions=None,
                                   held_out_events=events)
  spec = probes.TaskSpec("purchase_auc", "conversion_auc")
  # The labels are the interaction probe's: its AUC, exactly.
  assert probes.run_task(spec, converting, embeddings, 0) == {
      "purchase_auc": probes.run_task(
          probes.TaskSpec("purchase_auc", "interaction_auc"), data,
          embeddings, 0)["purchase_auc"]}
  assert probes.run_task(spec, converting, embeddings, 0)["purchase_auc"] > 0.95
  # Buys alone make no pairs: every pair must have been viewed.
  no_views = dataclasses.replace(converting, held_out_events=buys.assign(
      event="buy").drop(columns="label"))
  with pytest.raises(ValueError):
    probes.run_task(spec, no_views, embeddings, 0)


def test_item_class_probe_keeps_labels_with_enough_items(monkeypatch):
  seen = []
  monkeypatch.setattr(probes.linear_probes, "class_f1",
                      lambda features, labels, *args: seen.append(
                          (features, labels)) or 0.0)
  # Label 1 has four items, label 2 two, label 3 one.
  data = probes.TaskData(item_labels=np.array([[0], [1], [1], [2], [1], [3],
                                               [2], [1]]))
  embeddings = probes.Embeddings(users=np.zeros((1, 1, 1)),
                                 items=np.arange(8.0)[:, None])
  spec = probes.TaskSpec("f1", "item_class_f1", {"min_items": 2})
  probes.run_task(spec, data, embeddings, 0)
  features, labels = seen[-1]
  np.testing.assert_array_equal(features[:, 0], [1, 2, 3, 4, 6, 7])
  np.testing.assert_array_equal(labels, [1, 1, 2, 1, 2, 1])
  capped = probes.TaskSpec("f1", "item_class_f1",
                           {"min_items": 4, "max_items": 3})
  probes.run_task(capped, data, embeddings, 0)
  features, labels = seen[-1]
  assert len(features) == 3 and set(features[:, 0]) <= {1, 2, 4, 7}
  assert (labels == 1).all()


def test_relation_probe_can_draw_random_items_from_the_catalogue(monkeypatch):
  seen = []
  monkeypatch.setattr(probes.linear_probes, "binary_auc",
                      lambda features, labels, *args: seen.append(
                          (features, labels)) or 0.5)
  # Items 1..4 are in the catalogue; items 5..9 (vectors of 100) are not.
  items = np.ones((10, 1))
  items[5:] = 100.0
  data = probes.TaskData(item_relations={"r": np.array([[1, 2]] * 50)},
                         catalogue=np.arange(10) % 10 < 5)
  data.catalogue[0] = False
  embeddings = probes.Embeddings(users=np.zeros((1, 1, 1)), items=items)
  spec = probes.TaskSpec("r_auc", "relation_auc",
                         {"relation": "r", "catalogue_negatives": True})
  probes.run_task(spec, data, embeddings, 0)
  features, labels = seen[-1]
  # Every random pair is two catalogue items: products of 1, differences 0.
  np.testing.assert_array_equal(features[labels == 0], [[1.0, 0.0]] * 50)
  probes.run_task(probes.TaskSpec("r_auc", "relation_auc", {"relation": "r"}),
                  data, embeddings, 0)
  features, labels = seen[-1]
  assert (features[labels == 0, 0] > 1).any()
