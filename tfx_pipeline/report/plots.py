"""The evaluation report's plots, as PNG files beside its page.

Each `plot_*` function draws one figure of a `tfma_output.Evaluation` into
`output_dir` and returns the file's name, which the page links relatively.
Figures are drawn on an explicit Agg canvas, without pyplot's global state, so
reports can be written from any process, headless.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from matplotlib import figure as figure_lib
from matplotlib.backends import backend_agg

from tfx_pipeline import evaluation
from tfx_pipeline.report import tfma_output

RECALL_CURVE_PNG = "recall_curve.png"
SLICES_PNG = "slices.png"
BLESSED_COMPARISON_PNG = "blessed_model_comparison.png"
COMPARE_PNG = "compare.png"
LEARNING_CURVE_PNG = "learning_curve_{component}.png"
_MODEL_COLOR, _POPULAR_COLOR, _BLESSED_COLOR = "#1f6fb4", "#9a9a9a", "#e08a1e"


def _figure(width: float, height: float) -> figure_lib.Figure:
  figure = figure_lib.Figure(figsize=(width, height), dpi=110,
                             layout="constrained")
  backend_agg.FigureCanvasAgg(figure)
  return figure


def _save(figure: figure_lib.Figure, output_dir: str, name: str) -> str:
  figure.savefig(os.path.join(output_dir, name), format="png")
  return name


def _leave_room_for_labels(axes) -> None:
  """Starts the y axis at 0 with room for value labels above the top."""
  axes.set_ylim(0, axes.get_ylim()[1] * 1.1)


def _annotate_bars(axes, bars, values: Sequence[Optional[float]]) -> None:
  for bar, value in zip(bars, values):
    if value is not None:
      axes.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2,
                                     bar.get_height()),
                    ha="center", va="bottom", fontsize=7)


def plot_recall_curve(ev: tfma_output.Evaluation, output_dir: str) -> str:
  """Overall Recall@k against k, model vs most-popular (vs blessed model)."""
  ks = [k for k in evaluation.RECALL_KS
        if ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT,
                    f"recall_at_{k}") is not None]
  figure = _figure(6, 3.8)
  axes = figure.subplots()
  lines = [("model", evaluation.MODEL_OUTPUT, False, _MODEL_COLOR, "-"),
           ("most-popular", evaluation.BASELINE_OUTPUT, False, _POPULAR_COLOR,
            "-")]
  if ev.has_blessed_model:
    lines.append(("last blessed model", evaluation.MODEL_OUTPUT, True,
                  _BLESSED_COLOR, "--"))
  for label, output, blessed_model, color, style in lines:
    values = [ev.value(tfma_output.OVERALL, output, f"recall_at_{k}",
                       blessed_model) for k in ks]
    axes.plot(ks, values, style, marker="o", color=color, label=label)
    for k, value in zip(ks, values):
      if value is not None:
        axes.annotate(f"{value:.3f}", (k, value), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=7, color=color)
  axes.set_xticks(ks)
  axes.set_xlabel("k (top k of the whole catalogue, history excluded)")
  axes.set_ylabel("Recall@k, overall")
  _leave_room_for_labels(axes)
  axes.grid(alpha=0.3)
  axes.legend()
  return _save(figure, output_dir, RECALL_CURVE_PNG)


def plot_slices(ev: tfma_output.Evaluation, output_dir: str) -> str:
  """A bar chart per slice family of the headline metric, vs most-popular."""
  metric = tfma_output.headline_metric(ev)
  families = tfma_output.slice_families(ev.metrics)
  figure = _figure(4 * max(len(families), 1), 3.8)
  figure.suptitle(f"{metric} by slice")
  for axes, (column, keys) in zip(
      figure.subplots(1, max(len(families), 1), squeeze=False)[0],
      families.items()):
    positions = range(len(keys))
    for offset, output, color in ((-0.2, evaluation.MODEL_OUTPUT, _MODEL_COLOR),
                                  (0.2, evaluation.BASELINE_OUTPUT,
                                   _POPULAR_COLOR)):
      values = [ev.value(key, output, metric) for key in keys]
      bars = axes.bar([p + offset for p in positions],
                      [v or 0.0 for v in values], width=0.4, color=color,
                      label=tfma_output.OUTPUT_LABELS[output])
      _annotate_bars(axes, bars, values)
    axes.set_xticks(list(positions), [
        f"{key[0][1]}\nn={int(ev.example_count(key) or 0)}" for key in keys])
    axes.set_title(column)
    _leave_room_for_labels(axes)
    axes.grid(axis="y", alpha=0.3)
  figure.axes[0].legend()
  return _save(figure, output_dir, SLICES_PNG)


def _grouped_bars(axes, names: list[str],
                  series: list[tuple[str, list[Optional[float]], str, str]]):
  """Bars per metric name, one per (label, values, color, hatch) series."""
  width = 0.8 / len(series)
  for index, (label, values, color, hatch) in enumerate(series):
    offset = (index - (len(series) - 1) / 2) * width
    bars = axes.bar([p + offset for p in range(len(names))],
                    [v or 0.0 for v in values], width=width, color=color,
                    hatch=hatch, label=label, edgecolor="white")
    _annotate_bars(axes, bars, values)
  axes.set_xticks(range(len(names)), names)
  _leave_room_for_labels(axes)
  axes.grid(axis="y", alpha=0.3)
  axes.legend(fontsize=8)


def plot_blessed_model_comparison(ev: tfma_output.Evaluation,
                                  output_dir: str) -> str:
  """Overall metrics of the candidate next to the last blessed model."""
  names = ev.metric_names()
  figure = _figure(7, 3.8)
  axes = figure.subplots()
  _grouped_bars(axes, names, [
      ("candidate",
       [ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT, n)
        for n in names], _MODEL_COLOR, ""),
      ("last blessed model",
       [ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT, n,
                 blessed_model=True) for n in names], _BLESSED_COLOR, "")])
  axes.set_title("Candidate vs last blessed model, overall")
  return _save(figure, output_dir, BLESSED_COMPARISON_PNG)


def plot_run_comparison(run_a: tfma_output.Evaluation,
                        run_b: tfma_output.Evaluation, names: list[str],
                        output_dir: str) -> str:
  """Overall metrics `names` of two runs: model solid, most-popular hatched."""
  figure = _figure(8, 4)
  axes = figure.subplots()
  series = []
  for output, hatch, colors in (
      (evaluation.MODEL_OUTPUT, "", (_MODEL_COLOR, _BLESSED_COLOR)),
      (evaluation.BASELINE_OUTPUT, "//", ("#c6d8ea", "#f3d9b5"))):
    for label, ev, color in (("A", run_a, colors[0]), ("B", run_b, colors[1])):
      series.append((f"{label} {tfma_output.OUTPUT_LABELS[output]}",
                     [ev.value(tfma_output.OVERALL, output, n)
                      for n in names], color, hatch))
  _grouped_bars(axes, names, series)
  axes.set_title("Run A vs run B, overall")
  return _save(figure, output_dir, COMPARE_PNG)


def plot_learning_curve(curve, component: str, output_dir: str) -> str:
  """A Trainer's validation metric per step (epoch or setting tried).

  Args:
    curve: its `models.learning_curve.LearningCurve`.
    component: the Trainer's component id, which names the file.
    output_dir: where to write.
  """
  figure = _figure(5.5, 3.4)
  axes = figure.subplots()
  positions = list(range(len(curve.points)))
  values = [point.validation for point in curve.points]
  axes.plot(positions, values, "-", marker="o", color=_MODEL_COLOR,
            label=f"validation {curve.metric}")
  best = [p for p, point in zip(positions, curve.points)
          if point.step == curve.best]
  axes.plot(best, [values[p] for p in best], "o", markersize=11,
            markerfacecolor="none", color=_BLESSED_COLOR, label="best")
  handles = axes.get_legend_handles_labels()[0]
  losses = [point.train_loss for point in curve.points]
  if any(loss is not None for loss in losses):
    loss_axes = axes.twinx()
    handles += loss_axes.plot(positions, losses, "--", marker=".",
                              color=_POPULAR_COLOR, label="train loss")
    loss_axes.set_ylabel("train loss")
  labels = [str(point.step) for point in curve.points]
  # Long labels (several hyperparameters) are slanted to stay apart.
  slanted = len(curve.points) * max(map(len, labels)) > 60
  axes.set_xticks(positions, labels, rotation=30 if slanted else 0,
                  ha="right" if slanted else "center", fontsize=7)
  axes.set_xlabel("step (epoch, or the setting tried)")
  axes.set_ylabel(curve.metric)
  axes.set_title(f"{component} ({curve.family})")
  axes.grid(alpha=0.3)
  axes.legend(handles=handles, fontsize=8)
  return _save(figure, output_dir,
               LEARNING_CURVE_PNG.format(component=component))
