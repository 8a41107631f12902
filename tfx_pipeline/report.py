"""HTML evaluation reports, read back from the Evaluator's TFMA output.

Every number in a report comes from `tfma.load_eval_result` and
`tfma.load_validation_result` of one Evaluator output directory, plus what
ML-Metadata recorded about the run (component timings, blessing, push), so
the page shows exactly what the Evaluator computed and gated on; nothing is
recomputed. A run's report is written next to that output:

    <evaluation uri>/report/index.html   the page (inline CSS, no JS)
    <evaluation uri>/report/*.png        its plots, linked relatively

`compare` renders two Evaluator outputs side by side the same way.
"""

from __future__ import annotations

import dataclasses
import html
import os
from typing import Optional, Sequence

from matplotlib import figure as figure_lib
from matplotlib.backends import backend_agg
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from data import examples
from data import features
from tfx_pipeline import evaluation
from tfx_pipeline import run_summary

REPORT_DIR = "report"
INDEX = "index.html"
RECALL_CURVE_PNG = "recall_curve.png"
SLICES_PNG = "slices.png"
BLESSED_COMPARISON_PNG = "blessed_model_comparison.png"
COMPARE_PNG = "compare.png"

OUTPUT_LABELS = {evaluation.MODEL_OUTPUT: "model",
                 evaluation.BASELINE_OUTPUT: "most-popular"}
# A ranking family's EvalConfig has a single, unnamed output. The report files
# its metrics under the model's output name, so that tables and plots treat
# retrieval and ranking evaluations alike.
_UNNAMED_OUTPUT = ""
OVERALL = ()
# Buckets read best in their natural order, not alphabetically.
_VALUE_ORDER = {
    features.USER_ACTIVITY_BUCKET: examples.USER_ACTIVITY_BUCKETS,
    features.ITEM_POPULARITY_BUCKET: examples.ITEM_POPULARITY_BUCKETS,
}
_MODEL_COLOR, _POPULAR_COLOR, _BLESSED_COLOR = "#1f6fb4", "#9a9a9a", "#e08a1e"
_FOOTER = (
    "Built only from tfma.load_eval_result and tfma.load_validation_result of "
    "the Evaluator output above (and ML-Metadata for timings, blessing and "
    "push). Calibration and precision-recall curves belong to ranking models, "
    "which score a few candidates with a probability; this pipeline trains a "
    "retrieval model only so far, so there are none to show.")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
 margin:2em auto;max-width:72em;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
 margin-top:1.8em}
.meta{color:#555;font-size:.9em}.meta code{word-break:break-all}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em}th{background:#f4f4f4}
td+td{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.8em 1em;border-radius:6px;margin:1em 0}
.ok{background:#e6f4ea;border:1px solid #7cc28e}
.bad{background:#fce8e6;border:1px solid #e59890}
.pos{color:#137333}.neg{color:#b3261e}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
footer{margin-top:3em;color:#666;font-size:.85em;border-top:1px solid #ddd;
 padding-top:.8em}
"""

SliceKey = tuple  # ((column, value), ...); OVERALL for the whole eval split.
Metrics = dict  # SliceKey -> "output/metric" -> value


@dataclasses.dataclass
class Threshold:
  """One check of the blessing gate and what the Evaluator measured for it.

  Attributes:
    metric: metric name, e.g. `recall_at_50`.
    output: TFMA output name the metric is computed on.
    slices: the slices it applies to, in words.
    is_change: a change threshold (vs the last blessed model), not a value
      threshold.
    requirement: the condition, in words.
    value: the measured value (TFMA's `*_diff` for change thresholds) when
      the threshold names one slice; None when it covers several.
    failed: whether the validation result lists a failure for it.
  """
  metric: str
  output: str
  slices: str
  is_change: bool
  requirement: str
  value: Optional[float]
  failed: bool


@dataclasses.dataclass
class Evaluation:
  """One Evaluator output, as TFMA reads it back.

  Attributes:
    uri: the Evaluator output directory.
    model_location: the evaluated (candidate) model.
    metrics: the candidate's metrics per slice, TFMA's `*_diff` included
      when a blessed model was evaluated beside it.
    blessed_model_location: the last blessed model, "" when there was none.
    blessed_model_metrics: its metrics per slice, empty when there was none.
    validation: TFMA's ValidationResult, the source of the blessing.
    thresholds: every threshold of the gate, with its outcome.
  """
  uri: str
  model_location: str
  metrics: Metrics
  blessed_model_location: str
  blessed_model_metrics: Metrics
  validation: tfma.ValidationResult
  thresholds: list[Threshold]

  def value(self, slice_key: SliceKey, output: str, metric: str,
            blessed_model: bool = False) -> Optional[float]:
    table = self.blessed_model_metrics if blessed_model else self.metrics
    return table.get(slice_key, {}).get(f"{output}/{metric}")

  @property
  def has_blessed_model(self) -> bool:
    return bool(self.blessed_model_metrics)

  def metric_names(self) -> list[str]:
    """The pipeline's ranking metrics this output holds, in usual order."""
    overall = self.metrics.get(OVERALL, {})
    return [name for name in (evaluation.metric_names() +
                              list(evaluation.RANKING_METRIC_NAMES))
            if f"{evaluation.MODEL_OUTPUT}/{name}" in overall]

  def example_count(self, slice_key: SliceKey) -> Optional[float]:
    return self.value(slice_key, evaluation.MODEL_OUTPUT, "example_count")


def _model_names(config) -> tuple[Optional[str], Optional[str]]:
  """(candidate, blessed model) names; TFMA names them only when both ran."""
  candidate = blessed = None
  for spec in config.model_specs:
    if spec.is_baseline:
      blessed = spec.name
    else:
      candidate = spec.name or None
  return candidate, blessed


def load_evaluation(uri: str) -> Evaluation:
  """Reads an Evaluator output directory back with TFMA."""
  if not os.path.isfile(os.path.join(uri, "eval_config.json")):
    raise FileNotFoundError(f"{uri} is not an Evaluator output (no "
                            "eval_config.json)")
  result = tfma.load_eval_result(uri)
  candidate, blessed = _model_names(result.config)
  if candidate:
    result = tfma.load_eval_result(uri, model_name=candidate)
  blessed_result = (tfma.load_eval_result(uri, model_name=blessed)
                    if blessed else None)
  metrics = _name_unnamed_output(run_summary.flatten_metrics(result))
  validation = tfma.load_validation_result(uri)
  return Evaluation(
      uri=uri, model_location=result.model_location, metrics=metrics,
      blessed_model_location=(blessed_result.model_location
                              if blessed_result else ""),
      blessed_model_metrics=(
          _name_unnamed_output(run_summary.flatten_metrics(blessed_result))
          if blessed_result else {}),
      validation=validation,
      thresholds=_thresholds(result.config, candidate, metrics, validation))


def _output_name(output: str) -> str:
  return evaluation.MODEL_OUTPUT if output == _UNNAMED_OUTPUT else output


def _name_unnamed_output(metrics: Metrics) -> Metrics:
  """Files bare metric names (an unnamed output) under the model's output."""
  return {slice_key: {(key if "/" in key else
                       f"{evaluation.MODEL_OUTPUT}/{key}"): value
                      for key, value in row.items()}
          for slice_key, row in metrics.items()}


def _spec_slice(spec) -> tuple[str, Optional[SliceKey]]:
  """A SlicingSpec in words, and its one slice when it names exactly one."""
  if spec is None:
    return "every slice", None
  if not spec.feature_keys and not spec.feature_values:
    return "overall", OVERALL
  if spec.feature_keys:
    return "every " + " x ".join(spec.feature_keys) + " slice", None
  key = tuple(sorted(spec.feature_values.items()))
  return run_summary.slice_name(key), key


def _requirement(threshold, is_change: bool) -> str:
  """A GenericValueThreshold or GenericChangeThreshold, in words."""
  if not is_change:
    bounds = []
    if threshold.HasField("lower_bound"):
      bounds.append(f"at least {threshold.lower_bound.value:g}")
    if threshold.HasField("upper_bound"):
      bounds.append(f"at most {threshold.upper_bound.value:g}")
    return " and ".join(bounds) or "any value"
  # TFMA compares candidate - blessed model with the bound, in the direction
  # in which the metric improves.
  sign = (">=" if threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
          else "<=")
  return " and ".join(
      f"change vs the last blessed model {sign} "
      f"{getattr(threshold, kind).value:+g} ({kind})"
      for kind in ("absolute", "relative") if threshold.HasField(kind)
  ) or "any change"


def _failure_keys(validation) -> set[tuple]:
  keys = set()
  for per_slice in validation.metric_validations_per_slice:
    slice_key = tfma.slicer.deserialize_slice_key(per_slice.slice_key)
    for failure in per_slice.failures:
      key = failure.metric_key
      keys.add((slice_key, key.name, key.output_name, key.is_diff))
  return keys


def _thresholds(config, candidate: Optional[str], metrics: Metrics,
                validation) -> list[Threshold]:
  """Every threshold the candidate was gated on, with value and outcome."""
  failures = _failure_keys(validation)
  rows = []
  by_key = metric_specs.metric_thresholds_from_metrics_specs(
      config.metrics_specs, config)
  for key, entries in by_key.items():
    if (key.model_name or None) != candidate:
      continue
    # Per-slice thresholds come as (slicing spec, threshold) pairs; a plain
    # `threshold` applies to every slice.
    if not isinstance(entries, list):
      entries = [(None, entries)]
    for spec, threshold in entries:
      slices, slice_key = _spec_slice(spec)
      name = f"{key.name}_diff" if key.is_diff else key.name
      model_output = _output_name(key.output_name)
      value = (metrics.get(slice_key, {}).get(f"{model_output}/{name}")
               if slice_key is not None else None)
      failed = any(
          (slice_key is None or failed_slice == slice_key) and
          (metric, output, is_diff) == (key.name, key.output_name, key.is_diff)
          for failed_slice, metric, output, is_diff in failures)
      rows.append(Threshold(key.name, model_output, slices, key.is_diff,
                            _requirement(threshold, key.is_diff), value,
                            failed))
  return sorted(rows, key=lambda t: (t.metric, t.output, t.is_change))


def failures_in_words(validation) -> list[str]:
  """Why a ValidationResult is not OK, one sentence per problem."""
  lines = []
  for per_slice in validation.metric_validations_per_slice:
    where = run_summary.slice_name(
        tfma.slicer.deserialize_slice_key(per_slice.slice_key))
    for failure in per_slice.failures:
      key = failure.metric_key
      output = _output_name(key.output_name)
      what = OUTPUT_LABELS.get(output, output)
      measured = (f"{key.name} change vs the last blessed model"
                  if key.is_diff else key.name)
      threshold = (failure.metric_threshold.change_threshold if key.is_diff
                   else failure.metric_threshold.value_threshold)
      value = (f"{failure.metric_value.double_value.value:.4f}"
               if failure.metric_value.HasField("double_value") else "unknown")
      line = (f"{where}: {what} {measured} is {value}, but the gate requires "
              f"{_requirement(threshold, key.is_diff)}.")
      lines.append(line + (f" TFMA: {failure.message}" if failure.message
                           else ""))
  for missing in validation.missing_slices:
    lines.append(f"Slice {_spec_slice(missing)[0]} has a threshold but no "
                 "eval examples.")
  if validation.missing_thresholds:
    lines.append("A thresholded metric was not computed, so its threshold "
                 "could not pass.")
  return lines


def _rank(order: Sequence[str], name: str) -> tuple:
  """Sorts names in `order` first, in that order, then the rest by name."""
  return (order.index(name), "") if name in order else (len(order), name)


def slice_families(metrics: Metrics) -> dict[str, list[SliceKey]]:
  """Single-feature slices grouped by feature, pipeline slice features first."""
  families = {}
  for slice_key in metrics:
    if len(slice_key) == 1:
      families.setdefault(slice_key[0][0], []).append(slice_key)
  return {
      column: sorted(families[column],
                     key=lambda k, c=column: _rank(_VALUE_ORDER.get(c, ()),
                                                   str(k[0][1])))
      for column in sorted(families,
                           key=lambda c: _rank(features.SLICE_FEATURES, c))}


def headline_metric(ev: Evaluation) -> str:
  """The gated metric if there is one, else the first metric."""
  for threshold in ev.thresholds:
    if threshold.output == evaluation.MODEL_OUTPUT:
      return threshold.metric
  return ev.metric_names()[0]


# Plots. Figures are drawn on an explicit Agg canvas, without pyplot's global
# state, so reports can be written from any process, headless.


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


def plot_recall_curve(ev: Evaluation, output_dir: str) -> str:
  """Overall Recall@k against k, model vs most-popular (vs blessed model)."""
  ks = [k for k in evaluation.RECALL_KS
        if ev.value(OVERALL, evaluation.MODEL_OUTPUT, f"recall_at_{k}")
        is not None]
  figure = _figure(6, 3.8)
  axes = figure.subplots()
  lines = [("model", evaluation.MODEL_OUTPUT, False, _MODEL_COLOR, "-"),
           ("most-popular", evaluation.BASELINE_OUTPUT, False, _POPULAR_COLOR,
            "-")]
  if ev.has_blessed_model:
    lines.append(("last blessed model", evaluation.MODEL_OUTPUT, True,
                  _BLESSED_COLOR, "--"))
  for label, output, blessed_model, color, style in lines:
    values = [ev.value(OVERALL, output, f"recall_at_{k}", blessed_model)
              for k in ks]
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


def plot_slices(ev: Evaluation, output_dir: str) -> str:
  """A bar chart per slice family of the headline metric, vs most-popular."""
  metric = headline_metric(ev)
  families = slice_families(ev.metrics)
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
                      label=OUTPUT_LABELS[output])
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


def plot_blessed_model_comparison(ev: Evaluation, output_dir: str) -> str:
  """Overall metrics of the candidate next to the last blessed model."""
  names = ev.metric_names()
  figure = _figure(7, 3.8)
  axes = figure.subplots()
  _grouped_bars(axes, names, [
      ("candidate", [ev.value(OVERALL, evaluation.MODEL_OUTPUT, n)
                     for n in names], _MODEL_COLOR, ""),
      ("last blessed model",
       [ev.value(OVERALL, evaluation.MODEL_OUTPUT, n, blessed_model=True)
        for n in names], _BLESSED_COLOR, "")])
  axes.set_title("Candidate vs last blessed model, overall")
  return _save(figure, output_dir, BLESSED_COMPARISON_PNG)


def plot_run_comparison(run_a: Evaluation, run_b: Evaluation,
                        names: list[str], output_dir: str) -> str:
  """Overall metrics `names` of two runs: model solid, most-popular hatched."""
  figure = _figure(8, 4)
  axes = figure.subplots()
  series = []
  for output, hatch, colors in (
      (evaluation.MODEL_OUTPUT, "", (_MODEL_COLOR, _BLESSED_COLOR)),
      (evaluation.BASELINE_OUTPUT, "//", ("#c6d8ea", "#f3d9b5"))):
    for label, ev, color in (("A", run_a, colors[0]), ("B", run_b, colors[1])):
      series.append((f"{label} {OUTPUT_LABELS[output]}",
                     [ev.value(OVERALL, output, n) for n in names], color,
                     hatch))
  _grouped_bars(axes, names, series)
  axes.set_title("Run A vs run B, overall")
  return _save(figure, output_dir, COMPARE_PNG)


# HTML. Cells are HTML strings; every text that comes from data is escaped.


def _number(value: Optional[float]) -> str:
  return "&ndash;" if value is None else f"{value:.4f}"


def _delta(value: Optional[float]) -> str:
  if value is None:
    return "&ndash;"
  css = "pos" if value > 0 else "neg" if value < 0 else ""
  return f'<span class="{css}">{value:+.4f}</span>'


def _count(value: Optional[float]) -> str:
  return "&ndash;" if value is None else f"{int(value)}"


def _difference(new: Optional[float], old: Optional[float]) -> Optional[float]:
  return None if new is None or old is None else new - old


def _table(header: Sequence[str], rows: Sequence[Sequence[str]],
           groups: Sequence[tuple[str, int]] = ()) -> str:
  """A table; `groups` is an optional header row of (label, column span)."""
  head = ""
  if groups:
    head += "<tr>" + "".join(f'<th colspan="{span}">{label}</th>'
                             for label, span in groups) + "</tr>"
  head += "<tr>" + "".join(f"<th>{cell}</th>" for cell in header) + "</tr>"
  body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                 for row in rows)
  return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _image(name: str, alt: str) -> str:
  return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>'


def _page(title: str, body: str) -> str:
  return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
          f"<body><h1>{html.escape(title)}</h1>{body}"
          f"<footer>{html.escape(_FOOTER)}</footer></body></html>\n")


def _meta(items: Sequence[tuple[str, str]]) -> str:
  return '<p class="meta">' + "<br>".join(
      f"{html.escape(label)}: <code>{html.escape(value)}</code>"
      for label, value in items) + "</p>"


def _decision_section(ev: Evaluation,
                      summary: Optional[run_summary.RunSummary]) -> str:
  """The blessing, every threshold with its value, and failures in words."""
  ok = ev.validation.validation_ok
  verdict = (f'<div class="verdict {"ok" if ok else "bad"}"><strong>'
             f'{"Blessed" if ok else "Not blessed"}</strong>: ')
  verdict += ("the candidate passed every threshold of the gate."
              if ok else "the candidate failed the gate.")
  if summary is not None:
    blessing = {True: "blessed", False: "not blessed", None: "none recorded"}
    verdict += (f"<br>Evaluator blessing in ML-Metadata: "
                f"{blessing[summary.blessed]}. Pushed: "
                f"{html.escape(summary.pushed_dir or 'no')}.")
  verdict += "</div>"
  rows = [[html.escape(t.metric),
           html.escape(OUTPUT_LABELS.get(t.output, t.output)),
           html.escape(t.slices), "change" if t.is_change else "value",
           html.escape(t.requirement),
           _delta(t.value) if t.is_change else _number(t.value),
           "<strong>failed</strong>" if t.failed else "passed"]
          for t in ev.thresholds]
  body = verdict + "<h3>Thresholds</h3>"
  body += (_table(["metric", "of", "slice", "kind", "requirement",
                   "measured", "result"], rows)
           if rows else "<p>The gate has no thresholds: every model is "
           "blessed.</p>")
  if not ev.has_blessed_model:
    body += ("<p>There was no earlier blessed model to compare with, so "
             "change thresholds were not checked: value thresholds alone "
             "decided.</p>")
  failures = failures_in_words(ev.validation)
  if failures:
    body += "<h3>Why it failed</h3><ul>" + "".join(
        f"<li>{html.escape(line)}</li>" for line in failures) + "</ul>"
  return "<h2>Blessing decision</h2>" + body


def _overall_section(ev: Evaluation, images: list[str]) -> str:
  header = ["metric", "model", "most-popular"]
  if ev.has_blessed_model:
    header += ["last blessed model", "change (TFMA diff)"]
  rows = []
  for name in ev.metric_names():
    row = [html.escape(name),
           _number(ev.value(OVERALL, evaluation.MODEL_OUTPUT, name)),
           _number(ev.value(OVERALL, evaluation.BASELINE_OUTPUT, name))]
    if ev.has_blessed_model:
      row += [_number(ev.value(OVERALL, evaluation.MODEL_OUTPUT, name, True)),
              _delta(ev.value(OVERALL, evaluation.MODEL_OUTPUT,
                              f"{name}_diff"))]
    rows.append(row)
  return ("<h2>Overall</h2>" + _table(header, rows) +
          "".join(_image(name, name) for name in images))


def _slice_section(ev: Evaluation, image: str) -> str:
  """Per slice family: examples, then each metric's columns side by side."""
  names = ev.metric_names()
  columns = ["model", "most-popular"]
  if ev.has_blessed_model:
    columns.append("change vs blessed")
  body = "<h2>By slice</h2>" + _image(image, "metric by slice")
  for column, keys in slice_families(ev.metrics).items():
    rows = []
    for key in keys:
      row = [html.escape(str(key[0][1])), _count(ev.example_count(key))]
      for name in names:
        row += [_number(ev.value(key, evaluation.MODEL_OUTPUT, name)),
                _number(ev.value(key, evaluation.BASELINE_OUTPUT, name))]
        if ev.has_blessed_model:
          row.append(_delta(ev.value(key, evaluation.MODEL_OUTPUT,
                                     f"{name}_diff")))
      rows.append(row)
    body += f"<h3>{html.escape(column)}</h3>" + _table(
        [html.escape(column), "examples"] + columns * len(names), rows,
        groups=[("", 2)] + [(html.escape(n), len(columns)) for n in names])
  return body


def _run_section(summary: run_summary.RunSummary) -> str:
  rows = [[html.escape(run.component), html.escape(run.state),
           f"{run.seconds:.1f}"] for run in summary.components]
  return ("<h2>Pipeline run</h2>" +
          _meta([("run", summary.run_id)]) +
          _table(["component", "state", "seconds"], rows))


def write_report(evaluation_uri: str, output_dir: Optional[str] = None,
                 summary: Optional[run_summary.RunSummary] = None) -> str:
  """Writes the HTML report of one Evaluator output.

  Args:
    evaluation_uri: the Evaluator's output directory.
    output_dir: where to write; default `<evaluation_uri>/report`.
    summary: the run's ML-Metadata summary, for timings, blessing and push.

  Returns:
    The path of the report's index.html.
  """
  ev = load_evaluation(evaluation_uri)
  output_dir = output_dir or os.path.join(evaluation_uri, REPORT_DIR)
  os.makedirs(output_dir, exist_ok=True)
  has_recall = any(name.startswith("recall_at_") for name in ev.metric_names())
  overall_images = [plot_recall_curve(ev, output_dir)] if has_recall else []
  if ev.has_blessed_model:
    overall_images.append(plot_blessed_model_comparison(ev, output_dir))
  meta = [("evaluation", ev.uri), ("model", ev.model_location)]
  if ev.has_blessed_model:
    meta.append(("last blessed model", ev.blessed_model_location))
  meta.append(("eval examples", f"{int(ev.example_count(OVERALL) or 0)}"))
  body = (_meta(meta) + _decision_section(ev, summary) +
          _overall_section(ev, overall_images) +
          _slice_section(ev, plot_slices(ev, output_dir)))
  if summary is not None:
    body += _run_section(summary)
  title = "Evaluation report" + (f": run {summary.run_id}" if summary else "")
  return _write(output_dir, _page(title, body))


def _write(output_dir: str, page: str) -> str:
  path = os.path.join(output_dir, INDEX)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return path


def run_evaluation_uri(summary: run_summary.RunSummary) -> str:
  """The Evaluator output of a run; a clear error when it has none."""
  uri = summary.artifacts.get("Evaluator.evaluation")
  if not uri:
    raise LookupError(f"run {summary.run_id} has no Evaluator output (it "
                      "stopped before evaluation)")
  return uri


def write_run_report(summary: run_summary.RunSummary,
                     output_dir: Optional[str] = None) -> str:
  """Writes a run's report next to its Evaluator output; returns the path."""
  return write_report(run_evaluation_uri(summary), output_dir, summary)


def _run_legend(a: Evaluation, b: Evaluation) -> str:
  items = []
  for label, ev in (("A", a), ("B", b)):
    verdict = "blessed" if ev.validation.validation_ok else "not blessed"
    examples = int(ev.example_count(OVERALL) or 0)
    items.append((f"run {label} ({verdict}, {examples} eval examples)",
                   ev.uri))
  return _meta(items)


def _compare_overall(a: Evaluation, b: Evaluation, names: list[str]) -> str:
  rows = []
  for output in (evaluation.MODEL_OUTPUT, evaluation.BASELINE_OUTPUT):
    for name in names:
      old, new = a.value(OVERALL, output, name), b.value(OVERALL, output, name)
      rows.append([html.escape(f"{name} ({OUTPUT_LABELS[output]})"),
                   _number(old), _number(new), _delta(_difference(new, old))])
  return _table(["metric", "A", "B", "B - A"], rows)


def _compare_slices(a: Evaluation, b: Evaluation, names: list[str]) -> str:
  """Per slice family: examples of A and B, then each metric's A, B, B - A."""
  body = ""
  for column, keys in slice_families({**a.metrics, **b.metrics}).items():
    rows = []
    for key in keys:
      row = [html.escape(str(key[0][1])), _count(a.example_count(key)),
             _count(b.example_count(key))]
      for name in names:
        old = a.value(key, evaluation.MODEL_OUTPUT, name)
        new = b.value(key, evaluation.MODEL_OUTPUT, name)
        row += [_number(old), _number(new), _delta(_difference(new, old))]
      rows.append(row)
    body += f"<h3>{html.escape(column)}</h3>" + _table(
        [html.escape(column), "examples A", "examples B"] +
        ["A", "B", "B - A"] * len(names), rows,
        groups=[("", 3)] + [(html.escape(n), 3) for n in names])
  return body


def compare(run_a: str, run_b: str, output_dir: str) -> str:
  """Writes two Evaluator outputs side by side into `output_dir`.

  Args:
    run_a: Evaluator output directory of the first run (A).
    run_b: Evaluator output directory of the second run (B); deltas are B - A.
    output_dir: where index.html and its plot go.

  Returns:
    The path of the comparison's index.html.
  """
  a, b = load_evaluation(run_a), load_evaluation(run_b)
  os.makedirs(output_dir, exist_ok=True)
  names = [n for n in a.metric_names() if n in b.metric_names()]
  plot = plot_run_comparison(a, b, names, output_dir)
  body = (_run_legend(a, b) + "<h2>Overall</h2>" +
          _compare_overall(a, b, names) + _image(plot, "run A vs run B") +
          "<h2>By slice (model)</h2>" + _compare_slices(a, b, names))
  return _write(output_dir, _page("Evaluation comparison: run A vs run B",
                                  body))
