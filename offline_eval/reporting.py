"""Seed aggregation, markdown tables and JSON output for benchmark scripts."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Mapping, Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (0 for a single value)."""
  values = np.asarray(values, dtype=np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
  return float(values.mean()), std


def aggregate_seeds(runs: Sequence[Mapping[str, float]]) -> dict[str, dict]:
  """Per metric: mean, std and the per-seed values, over runs with equal keys."""
  if not runs:
    raise ValueError("no runs to aggregate")
  names = list(runs[0])
  for run in runs[1:]:
    if list(run) != names:
      raise ValueError(f"runs report different metrics: {names} vs {list(run)}")
  aggregated = {}
  for name in names:
    values = [float(run[name]) for run in runs]
    mean, std = mean_std(values)
    aggregated[name] = {"mean": mean, "std": std, "values": values}
  return aggregated


def format_mean_std(stats: Mapping[str, float], digits: int = 4) -> str:
  """`0.1234 ± 0.0012`."""
  return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  """A GitHub markdown table."""
  lines = ["| " + " | ".join(str(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
  for row in rows:
    if len(row) != len(headers):
      raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")
    lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
  return "\n".join(lines)


def write_json(path: str | os.PathLike, payload: Mapping) -> pathlib.Path:
  """Writes `payload` as indented JSON, creating parent folders."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_jsonable) + "\n")
  return path


def _jsonable(value):
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"not JSON serialisable: {type(value).__name__}")
