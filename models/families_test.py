"""Tests for the family registry."""

import dataclasses

import pytest

from models import families
from models import hparams


@pytest.mark.parametrize("spec", families.FAMILIES.values(), ids=lambda s: s.name)
def test_every_dotted_path_loads(spec):
  assert issubclass(spec.config_class(), hparams.HParams)
  assert callable(families.load(spec.train))
  assert callable(families.load(spec.export))
  if spec.build_model:
    assert callable(families.load(spec.build_model))


@pytest.mark.parametrize("spec", families.FAMILIES.values(), ids=lambda s: s.name)
def test_a_pretraining_family_is_registered_and_pretrains(spec):
  if spec.pretrained_by:
    assert families.get(spec.pretrained_by).kind == families.PRETRAINING


def test_kinds_of_the_built_in_families():
  ranking = {n for n, s in families.FAMILIES.items() if s.is_ranking}
  assert ranking == {"ranking", "seminar"}
  assert families.get(families.DEFAULT_FAMILY).kind == families.RETRIEVAL


def test_only_neural_retrieval_families_are_indexed():
  indexed = {n for n, s in families.FAMILIES.items() if s.builds_index}
  assert indexed == {"two_tower", "sasrec", "guim", "gmn"}
  for name in ("ease", "item_knn"):
    spec = families.get(name)
    assert spec.kind == families.RETRIEVAL and spec.build_model is None
    assert spec.train != families.RETRIEVAL_TRAIN


def test_unknown_family_names_the_registered_ones():
  with pytest.raises(ValueError, match="registered: .*two_tower"):
    families.get("nope")


def test_a_family_names_a_build_model_or_its_own_train():
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RETRIEVAL, "models.two_tower:TwoTowerConfig")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RETRIEVAL, "models.ease:EaseConfig",
                        train="models.item_item_trainer:train_ease",
                        build_model="models.two_tower:build_two_tower")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RANKING, "models.ranking:RankingConfig",
                        build_model="models.two_tower:build_two_tower")
  with pytest.raises(ValueError, match="build_model"):
    families.FamilySpec("x", families.RANKING, "models.ranking:RankingConfig")
  with pytest.raises(ValueError, match="kind"):
    families.FamilySpec("x", "clustering", "models.ranking:RankingConfig")


def test_hparams_known_keeps_what_the_config_declares():
  spec = families.get("guim")
  fields = {f.name for f in dataclasses.fields(spec.config_class())}
  assert "num_interests" in fields and "attention_scoring" not in fields
  assert spec.hparams_known({"num_interests": 2, "epochs": 3,
                             "attention_scoring": "pq"}) == {
                                 "num_interests": 2, "epochs": 3}
