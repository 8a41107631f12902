"""The one table of item-item fitters: `ease` and `item_knn`.

Each entry says how a family's closed form is fitted and which of its
hyperparameters are searched, over which grids of its config. The
pipeline's Trainer (`models.item_item.trainer`) and the offline benchmarks
(`offline_eval.item_item`) both read it, so a family is fitted and searched
the same way everywhere.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

from models.item_item import ease
from models.item_item import item_knn
from models.item_item import tuning


@dataclasses.dataclass(frozen=True)
class Fitter:
  """How one item-item family is fitted and searched.

  Attributes:
    name: the family's name (`models.families`).
    config_class: its hyperparameter dataclass.
    fit: `(interactions [users, num_items], config) -> ItemNeighbours`.
    grids: `config -> {hyperparameter: values}`, the grids that config
      declares for the hyperparameters its Trainer searches.
    fit_each: fits several settings on one X at once, for a family whose
      settings share work (EASE^R's λ path, item-kNN's pass per
      shrinkage); None fits them one by one.
  """
  name: str
  config_class: type
  fit: tuning.Fit
  grids: Callable[[Any], Mapping[str, Sequence]]
  fit_each: Optional[tuning.FitEach] = None

  @property
  def default_config(self) -> Any:
    """The family's config with its defaults."""
    return self.config_class()


FITTERS: dict[str, Fitter] = {fitter.name: fitter for fitter in (
    Fitter("ease", ease.EaseConfig, ease.fit_ease,
           lambda config: {"l2": config.l2_grid}, fit_each=ease.fit_ease_each),
    # Shrinkage first: the settings of one shrinkage share a pass over C.
    Fitter("item_knn", item_knn.ItemKnnConfig, item_knn.fit_item_knn,
           lambda config: {"shrinkage": config.shrinkage_grid,
                           "neighbours": config.neighbours_grid},
           fit_each=item_knn.fit_item_knn_each),
)}
