"""A run's summary as the plain-text tables the CLI prints.

`run_summary.summarize` reads what the run recorded; this module only lays
it out: component timings, the model's metrics per slice, the model beside
its baselines, what ModelSelector pushed and why, the learning curves, the
blessing and the push.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

from tfx_pipeline.components import model_selector
from tfx_pipeline.report import eval_results
from tfx_pipeline.report import run_summary


def selection_lines(selection: model_selector.Selection) -> list[str]:
  """What was pushed and why: every candidate's validation scores and, where
  every candidate has them, its mean relative score."""
  lines = [f"Pushed by validation ({model_selector.RULE}):"]
  relative = (model_selector.relative_scores(
      model_selector.comparable_candidates(selection.candidates))
              if selection.candidates[0].validation is not None else None)
  for candidate in selection.candidates:
    if candidate.validation is None:
      lines.append(f"  {candidate.label:22s} not selectable: "
                   f"{candidate.reason}")
      continue
    scores = candidate.metrics or {candidate.metric: candidate.validation}
    described = ", ".join(f"{name} {value:.4f}"
                          for name, value in scores.items())
    if relative and candidate.label in relative:
      described += f"; relative {relative[candidate.label]:.4f}"
    lines.append(f"  {candidate.label:22s} {described}")
  lines.append(f"  selected: {selection.selected or 'nothing'} "
               f"({selection.why})")
  chosen = selection.selected_candidate
  # A record written before candidates kept their artifact URIs has none.
  if chosen and chosen.uri:
    lines.append(f"  copied from: {chosen.uri}")
  return lines


def format_summary(summary: run_summary.RunSummary, heading: str,
                   outputs: Sequence[tuple[str, str]],
                   metric_names: Sequence[str]) -> str:
  """Renders the summary as the plain-text tables the CLI prints.

  Args:
    summary: the run.
    heading: what the metrics table shows.
    outputs: `(row label, TFMA output name)` per scorer; "" for a model with
      a single unnamed output.
    metric_names: the metric columns.
  """
  lines = [f"Run {summary.run_id}", "",
           f"{'component':34s} {'state':9s} seconds"]
  for run in summary.components:
    lines.append(f"{run.component:34s} {run.state:9s} {run.seconds:7.1f}")
  lines += ["", heading]
  if summary.split:
    lines.append(f"eval split protocol: {summary.split}")
  lines.append(f"{'slice':44s} {'model':14s} " +
               " ".join(f"{m:>12s}" for m in metric_names))
  for name, row in sorted(summary.metrics.items(),
                          key=lambda kv: (kv[0] != "overall", kv[0])):
    for label, output in outputs:
      values = [row.get(eval_results.metric_key(output, m))
                for m in metric_names]
      if all(v is None for v in values):
        continue
      lines.append(f"{name:44s} {label:14s} {_cells(values)}")
  overall = summary.metrics.get("overall", {})
  count = overall.get(eval_results.metric_key(outputs[0][1], "example_count"))
  if count is not None:
    lines.append(f"eval examples: {int(count)}")
  lines += _baseline_lines(summary, outputs[0][0], metric_names)
  lines += _learning_curve_lines(summary)
  for component, images in sorted(summary.item_images.items()):
    lines += ["", f"{component} item images: {images.in_words()}"]
  lines += ["",
            f"blessed: {summary.blessed}" + (
                " (ModelSelector's blessing, which the Pusher read)"
                if summary.selection else
                " (BaselineGate's blessing, which the Pusher read)"
                if summary.baseline_gate else ""),
            "pushed:  " + (summary.pushed_dir
                           or "no (not blessed, or push skipped)")]
  for name in ("Trainer.model", "Evaluator.evaluation",
               "Transform.transform_graph"):
    if name in summary.artifacts:
      lines.append(f"{name}: {summary.artifacts[name]}")
  return "\n".join(lines)


def _cells(values: Sequence[Optional[float]]) -> str:
  return " ".join(f"{v:12.4f}" if v is not None else f"{'-':>12s}"
                  for v in values)


def _baseline_lines(summary: run_summary.RunSummary, model_label: str,
                    metric_names: Sequence[str]) -> list[str]:
  """The model beside every baseline, overall, and the verdict."""
  scorers = run_summary.overall_scorers(summary, model_label, metric_names)
  if not scorers:
    return []
  lines = ["", "Overall, the model beside the baselines trained in this run "
           "(same eval split, same metrics):",
           f"{'scorer':24s} " + " ".join(f"{m:>12s}" for m in metric_names)]
  for scorer in scorers:
    lines.append(f"{scorer.label:24s} " + _cells(
        [scorer.metrics.get(m) for m in metric_names]))
  for family, failure in sorted(summary.baseline_failures.items()):
    lines.append(f"{family} did not fit, so it has no row: {failure}")
  metric = (summary.baseline_gate.metric if summary.baseline_gate
            else summary.gate_metric)
  verdict = run_summary.baseline_verdict(scorers, metric)
  if verdict:
    lines.append(verdict)
  if summary.baseline_gate:
    lines.append(f"BaselineGate: {summary.baseline_gate.in_words()}")
  if summary.selection:
    lines += selection_lines(summary.selection)
  return lines


def _learning_curve_lines(summary: run_summary.RunSummary) -> list[str]:
  lines = []
  for component, curve in sorted(summary.learning_curves.items()):
    width = max([len("step")] + [len(str(p.step)) for p in curve.points])
    lines += ["", f"{component} ({curve.family}): validation {curve.metric} "
              "on a split carved from train",
              f"{'step':{width}s} {'train_loss':>12s} {'validation':>12s}"]
    for point in curve.points:
      mark = "  <- best" if point.step == curve.best else ""
      lines.append(f"{str(point.step):{width}s} "
                   f"{_cells([point.train_loss, point.validation])}{mark}")
    lines.append(f"chosen: {json.dumps(curve.chosen)}")
    warning = curve.budget_warning()
    if warning:
      lines.append(f"WARNING: {component}: {warning}")
  return lines
