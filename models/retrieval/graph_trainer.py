"""The Trainer of the graph families (`lightgcn`, `gmn`): the shared
retrieval Trainer over the train graph.

It differs from `trainer.train_retrieval` in two places: the model is built
over the graph of the train rows that are not held out for validation (so
validation rows are not edges), and the export serves the model's
`serving_towers()`, over tables frozen when it is written, so a request
gathers rather than propagates.
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping

from models import families
from models import train_inputs
from models.retrieval import gmn
from models.retrieval import lightgcn
from models.retrieval import trainer as retrieval_trainer


def train_graph_family(fn_args, tft_output, hparams: Mapping[str, object],
                       spec: families.FamilySpec, build: Callable) -> None:
  """Trains a graph family's model and exports its serving signatures.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: overrides of the family's config defaults.
    spec: the family.
    build: its `build_model`, taking the train graph's `edges=(users,
      items)`.
  """
  config = train_inputs.seeded_config(fn_args, hparams, spec.config_class())
  rows, held_out = retrieval_trainer.held_out_rows(fn_args, tft_output)
  edges = (rows.users[~held_out], rows.targets[~held_out])
  model, catalogue = retrieval_trainer.build_model(
      fn_args, tft_output, functools.partial(build, edges=edges), config)
  validator = retrieval_trainer.validator(fn_args, tft_output, model,
                                          catalogue, rows, held_out)
  train = train_inputs.input_dataset_without(fn_args, tft_output, held_out,
                                             config.batch_size)
  retrieval_trainer.fit(model, train, validator, config, spec.name,
                        fn_args.model_run_dir,
                        num_items=len(catalogue.item_ids) - 1)
  retrieval_trainer.export(fn_args, tft_output, spec, *model.serving_towers(),
                           catalogue)


def train_lightgcn(fn_args, tft_output, hparams: Mapping[str, object],
                   spec: families.FamilySpec) -> None:
  """LightGCN over the graph of the train users and items."""
  train_graph_family(fn_args, tft_output, hparams, spec,
                     lightgcn.build_lightgcn)


def train_gmn(fn_args, tft_output, hparams: Mapping[str, object],
              spec: families.FamilySpec) -> None:
  """GMN over the graph of the train users and nodes (videos and items)."""
  train_graph_family(fn_args, tft_output, hparams, spec, gmn.build_gmn)
