"""Tests for the graph families' Trainer wiring."""

import types

import numpy as np
import pytest

from models import families
from models.retrieval import trainer as retrieval_trainer
from models.retrieval import trainer_test


@pytest.mark.parametrize("family", ["lightgcn", "gmn"])
def test_the_graph_is_the_rows_not_held_out_and_the_export_the_frozen_towers(
    family, monkeypatch, tmp_path):
  fn_args, tft_output = trainer_test.two_rows_per_user(
      np.arange(1, 4), np.array([3, 4, 5]), str(tmp_path))
  seen = {}
  serving = (object(), object())
  model = types.SimpleNamespace(serving_towers=lambda: serving)

  def build_model(fn_args, tft_output, build, config):
    seen["build"], seen["edges"] = build.func, build.keywords["edges"]
    return model, types.SimpleNamespace(item_ids=np.arange(6))

  monkeypatch.setattr(retrieval_trainer, "build_model", build_model)
  monkeypatch.setattr(retrieval_trainer, "validator",
                      lambda *args: None)
  monkeypatch.setattr(retrieval_trainer, "fit", lambda *args, **kwargs: None)
  monkeypatch.setattr(
      retrieval_trainer, "export",
      lambda fn_args, tft_output, spec, query, candidate, catalogue:
      seen.update(exported=(query, candidate)))
  spec = families.get(family)
  families.load(spec.train)(fn_args, tft_output, {}, spec)
  assert seen["build"] is families.load(
      f"models.retrieval.{family}:build_{family}")
  # The newest rows (items 3-5) are held out for validation: not edges.
  edges = sorted(zip(*(np.asarray(side).tolist() for side in seen["edges"])))
  assert edges == [(1, 1), (2, 1), (3, 1)]
  assert seen["exported"] == serving
