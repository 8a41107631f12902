"""Tests for the family registry."""

import dataclasses
import inspect

import pytest
import tensorflow as tf

from models import families
from models import hparams


# Each family's room: the sub-package of `models/` holding its code.
_PACKAGE_OF_FAMILY = {
    "two_tower": "retrieval", "sasrec": "retrieval", "guim": "retrieval",
    "gmn": "retrieval", "lightgcn": "retrieval", "ease": "item_item",
    "item_knn": "item_item",
    "courier": "ctr", "ranking": "ctr", "seminar_psu": "seminar",
    "seminar": "seminar",
}


def test_every_family_has_a_room():
  assert set(_PACKAGE_OF_FAMILY) == set(families.FAMILIES)


@pytest.mark.parametrize("spec", families.FAMILIES.values(), ids=lambda s: s.name)
def test_every_entry_point_loads_from_the_family_room(spec):
  room = f"models.{_PACKAGE_OF_FAMILY[spec.name]}."
  assert issubclass(spec.config_class(), hparams.HParams)
  assert spec.config.startswith(room)
  train = families.load(spec.train)
  assert spec.train.startswith(room)
  # `models.trainer.run_fn` calls every family's train the same way.
  assert list(inspect.signature(train).parameters) == [
      "fn_args", "tft_output", "hparams", "spec"]
  if spec.build_model:
    assert callable(families.load(spec.build_model))
    assert spec.build_model.startswith(room)


@pytest.mark.parametrize("spec", families.FAMILIES.values(), ids=lambda s: s.name)
def test_every_export_is_what_a_serving_model_is_saved_from(spec):
  export = families.load(spec.export)
  if spec.name == "seminar_psu":
    # It hands a checkpoint to the `seminar` Trainer; nothing serves it.
    assert list(inspect.signature(export).parameters) == [
        "pretrainer", "settings", "export_dir"]
    return
  assert issubclass(export, tf.Module)
  assert callable(export.save)
  # Each kind's SavedModel classes live in its room's `export` module.
  assert spec.export.split(":")[0].endswith(".export")


def test_a_pretraining_family_is_registered_and_pretrains():
  # Every `pretrained_by` names a registered pre-training family, and every
  # pre-training family pretrains a family: nothing else runs it.
  pretrainers = {spec.pretrained_by for spec in families.FAMILIES.values()
                 if spec.pretrained_by}
  pretraining = {name for name, spec in families.FAMILIES.items()
                 if spec.kind == families.PRETRAINING}
  assert pretrainers == pretraining == {"courier", "seminar_psu"}


def test_kinds_of_the_built_in_families():
  ranking = {n for n, s in families.FAMILIES.items() if s.is_ranking}
  assert ranking == {"ranking", "seminar"}


@pytest.mark.parametrize("dataset, family", [
    ("movielens-100k", "two_tower"),
    ("amazon-grocery", "sasrec"),
    ("contract", "sasrec"),
])
def test_the_default_family_is_the_two_tower_on_movielens_sasrec_elsewhere(
    dataset, family):
  assert families.default_family(dataset) == family
  assert families.get(family).kind == families.RETRIEVAL


def test_only_neural_retrieval_families_are_indexed():
  indexed = {n for n, s in families.FAMILIES.items() if s.builds_index}
  assert indexed == {"two_tower", "sasrec", "guim", "gmn", "lightgcn"}
  for name in ("ease", "item_knn"):
    spec = families.get(name)
    assert spec.kind == families.RETRIEVAL and spec.build_model is None
    assert spec.train != families.RETRIEVAL_TRAIN


def test_unknown_family_names_the_registered_ones():
  with pytest.raises(ValueError, match="registered: .*two_tower"):
    families.get("nope")


def test_a_family_names_a_build_model_or_its_own_train():
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RETRIEVAL, "models.retrieval.two_tower:TwoTowerConfig")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RETRIEVAL, "models.item_item.ease:EaseConfig",
                        train="models.item_item.trainer:train",
                        build_model="models.retrieval.two_tower:build_two_tower")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RANKING, "models.ctr.ranking:RankingConfig",
                        build_model="models.retrieval.two_tower:build_two_tower")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RANKING, "models.ctr.ranking:RankingConfig")
  with pytest.raises(ValueError, match="kind"):
    families.FamilySpec("x", "clustering", "models.ctr.ranking:RankingConfig")


def test_hparams_known_keeps_what_the_config_declares():
  spec = families.get("guim")
  fields = {f.name for f in dataclasses.fields(spec.config_class())}
  assert "num_interests" in fields and "attention_scoring" not in fields
  assert spec.hparams_known({"num_interests": 2, "epochs": 3,
                             "attention_scoring": "pq"}) == {
                                 "num_interests": 2, "epochs": 3}
