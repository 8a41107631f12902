"""A TFMA evaluation's metrics as plain tables.

Shared by what reads an Evaluator's output (`run_summary`, `tfma_output`,
the BaselineGate) so that none of them imports another for it.
"""

from __future__ import annotations


def metric_key(output_name: str, metric_name: str) -> str:
  """'output/metric', or the metric alone for a model's unnamed output."""
  return f"{output_name}/{metric_name}" if output_name else metric_name


def flatten_metrics(eval_result) -> dict[tuple, dict[str, float]]:
  """slice key -> 'output/metric' -> value, from a TFMA EvalResult."""
  table = {}
  for slice_key, metrics_by_output in eval_result.slicing_metrics:
    row = table.setdefault(tuple(slice_key), {})
    for output_name, by_sub_key in metrics_by_output.items():
      for metric_name, value in by_sub_key.get("", {}).items():
        if "doubleValue" in value:
          row[metric_key(output_name, metric_name)] = value["doubleValue"]
  return table
