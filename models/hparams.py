"""Hyperparameter dataclasses built from the pipeline's override dicts."""

from __future__ import annotations

import dataclasses
from typing import Mapping, TypeVar

ConfigT = TypeVar("ConfigT", bound="HParams")


class HParams:
  """Mixin of the families' frozen hyperparameter dataclasses."""

  @classmethod
  def from_dict(cls: type[ConfigT], values: Mapping[str, object]) -> ConfigT:
    """The defaults with `values` overridden.

    Overrides arrive as JSON from the CLI and the Trainer's custom_config, so
    lists become the tuples the dataclass declares.

    Raises:
      ValueError: on a name that is not a hyperparameter of `cls`.
    """
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
      raise ValueError(f"unknown {cls.__name__} hyperparameters "
                       f"{sorted(unknown)}; known: {sorted(fields)}")
    values = dict(values)
    for name, value in values.items():
      if isinstance(fields[name].default, tuple) and isinstance(value, list):
        values[name] = tuple(value)
    return cls(**values)
