"""The Trainer of the graph families (`lightgcn`, `gmn`): the shared
retrieval Trainer over the train graph.

It differs from `trainer.train_retrieval` in one place: the model is built
over the graph of the train rows that are not held out for validation (so
validation rows are not edges). Its export is the model's `serving_towers()`,
as for every retrieval family: here tables frozen when it is written, so a
request gathers rather than propagates.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping

from models import families
from models.retrieval import gmn
from models.retrieval import lightgcn
from models.retrieval import trainer as retrieval_trainer


def train_graph_family(fn_args, tft_output, hparams: Mapping[str, object],
                       spec: families.FamilySpec, build: Callable) -> None:
  """`trainer.train_and_export` with `build` over the train graph's edges.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's config defaults.
    spec: the family.
    build: its `build_model`, taking the train graph's `edges=(users,
      items)`.
  """
  retrieval_trainer.train_and_export(
      fn_args, tft_output, hparams, spec,
      lambda edges: functools.partial(build, edges=edges))


def train_lightgcn(fn_args, tft_output, hparams: Mapping[str, object],
                   spec: families.FamilySpec) -> None:
  """LightGCN over the graph of the train users and items."""
  train_graph_family(fn_args, tft_output, hparams, spec,
                     lightgcn.build_lightgcn)


def train_gmn(fn_args, tft_output, hparams: Mapping[str, object],
              spec: families.FamilySpec) -> None:
  """GMN over the graph of the train users and nodes (videos and items)."""
  train_graph_family(fn_args, tft_output, hparams, spec, gmn.build_gmn)
