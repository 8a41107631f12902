"""HTML evaluation reports, rendered from the Evaluator's TFMA output.

Every number in a report comes from `tfma_output.load_evaluation` of one
Evaluator output directory, plus what ML-Metadata recorded about the run
(component timings, blessing, push), so the page shows exactly what the
Evaluator computed and gated on; nothing is recomputed. A run's report is
written next to that output:

    <evaluation uri>/report/index.html   the page (inline CSS, no JS)
    <evaluation uri>/report/*.png        its plots (`plots`), linked
                                         relatively

`compare` renders two Evaluator outputs side by side the same way. Cells are
HTML strings; every text that comes from data is escaped.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from typing import Optional, Sequence

from data import storage
from tfx_pipeline import evaluation
from tfx_pipeline.report import plots
from tfx_pipeline.report import run_summary
from tfx_pipeline.report import summary_text
from tfx_pipeline.report import tfma_output

REPORT_DIR = "report"
INDEX = "index.html"
_FOOTER = (
    "Built only from tfma.load_eval_result and tfma.load_validation_result of "
    "the Evaluator output above (and ML-Metadata for timings, blessing and "
    "push). Calibration and precision-recall curves are not drawn: for the "
    "ranking (CTR) families the tables give AUC, log loss and calibration "
    "(mean prediction over mean label) as numbers.")
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


def _decision_section(ev: tfma_output.Evaluation,
                      summary: Optional[run_summary.RunSummary]) -> str:
  """The blessing, every threshold with its value, and failures in words."""
  ok = ev.validation.validation_ok
  verdict = (f'<div class="verdict {"ok" if ok else "bad"}"><strong>'
             f'{"Blessed" if ok else "Not blessed"}</strong>: ')
  verdict += ("the candidate passed every threshold of the gate."
              if ok else "the candidate failed the gate.")
  if summary is not None:
    blessing = {True: "blessed", False: "not blessed", None: "none recorded"}
    source = ("ModelSelector" if summary.selection is not None
              else "BaselineGate" if summary.baseline_gate is not None
              else "Evaluator")
    verdict += (f"<br>Blessing the Pusher read ({source}), in ML-Metadata: "
                f"{blessing[summary.blessed]}. Pushed: "
                f"{html.escape(summary.pushed_dir or 'no')}.")
  verdict += "</div>"
  rows = [[html.escape(t.metric),
           html.escape(tfma_output.OUTPUT_LABELS.get(t.output, t.output)),
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
  failures = tfma_output.failures_in_words(ev.validation)
  if failures:
    body += "<h3>Why it failed</h3><ul>" + "".join(
        f"<li>{html.escape(line)}</li>" for line in failures) + "</ul>"
  return "<h2>Blessing decision</h2>" + body


def _overall_section(ev: tfma_output.Evaluation, images: list[str]) -> str:
  header = ["metric", "model", "most-popular"]
  if ev.has_blessed_model:
    header += ["last blessed model", "change (TFMA diff)"]
  rows = []
  for name in ev.metric_names():
    row = [html.escape(name),
           _number(ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT,
                            name)),
           _number(ev.value(tfma_output.OVERALL, evaluation.BASELINE_OUTPUT,
                            name))]
    if ev.has_blessed_model:
      row += [_number(ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT,
                               name, blessed_model=True)),
              _delta(ev.value(tfma_output.OVERALL, evaluation.MODEL_OUTPUT,
                              f"{name}_diff"))]
    rows.append(row)
  return ("<h2>Overall</h2>" + _table(header, rows) +
          "".join(_image(name, name) for name in images))


def _slice_section(ev: tfma_output.Evaluation, image: str) -> str:
  """Per slice family: examples, then each metric's columns side by side."""
  names = ev.metric_names()
  columns = ["model", "most-popular"]
  if ev.has_blessed_model:
    columns.append("change vs blessed")
  body = "<h2>By slice</h2>" + _image(image, "metric by slice")
  for column, keys in tfma_output.slice_families(ev.metrics).items():
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


def _baselines_section(summary: run_summary.RunSummary,
                       names: Sequence[str]) -> str:
  """The model beside every baseline of the run, overall, and the verdict."""
  scorers = run_summary.overall_scorers(
      summary, summary.model_family or "model", names)
  if not scorers:
    return ""
  rows = [[(f"<strong>{html.escape(scorer.label)} (model)</strong>"
            if scorer.is_model else html.escape(scorer.label))] +
          [_number(scorer.metrics.get(name)) for name in names]
          for scorer in scorers]
  body = ("<h2>Model and baselines</h2><p>Overall, every scorer on the same "
          "eval split with the same metrics: the classical baselines were "
          "trained in this run on the same Transform output "
          "(<code>BaselineTrainer_&lt;family&gt;</code>) and scored by their "
          "own Evaluator.</p>" +
          _table(["scorer"] + [html.escape(name) for name in names], rows))
  for family, failure in sorted(summary.baseline_failures.items()):
    body += (f'<div class="verdict bad"><strong>{html.escape(family)} did not '
             f"fit</strong> and was not scored: {html.escape(failure)}</div>")
  gate = summary.baseline_gate
  metric = gate.metric if gate else summary.gate_metric
  verdict = run_summary.baseline_verdict(scorers, metric)
  if verdict:
    body += f"<p>{html.escape(verdict[0].upper() + verdict[1:])}.</p>"
  if gate:
    body += (f'<div class="verdict {"ok" if gate.blessed else "bad"}">'
             f"<strong>BaselineGate</strong> (the blessing the Pusher read): "
             f"{html.escape(gate.in_words())}.</div>")
  if summary.selection:
    body += ("<pre>" + html.escape("\n".join(
        summary_text.selection_lines(summary.selection))) + "</pre>")
  return body


def _learning_curves_section(summary: run_summary.RunSummary,
                             output_dir: str) -> str:
  """One table and plot per Trainer that wrote a learning curve."""
  if not summary.learning_curves:
    return ""
  body = ("<h2>Learning curves</h2><p>Each Trainer's validation metric on a "
          "split carved from train (never the eval split), per epoch or per "
          "setting tried.</p>")
  for component, curve in sorted(summary.learning_curves.items()):
    warning = curve.budget_warning()
    rows = [[html.escape(str(point.step)), _number(point.train_loss),
             _number(point.validation),
             "<strong>best</strong>" if point.step == curve.best else ""]
            for point in curve.points]
    body += (f"<h3>{html.escape(component)} ({html.escape(curve.family)})"
             "</h3>" +
             _table(["step", "train loss",
                     f"validation {html.escape(curve.metric)}", ""], rows) +
             _meta([("chosen", json.dumps(curve.chosen))]) +
             (f"<p><strong>Warning:</strong> {html.escape(warning)}</p>"
              if warning else "") +
             _image(plots.plot_learning_curve(curve, component, output_dir),
                    f"learning curve of {component}"))
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
  output_dir = output_dir or os.path.join(evaluation_uri, REPORT_DIR)
  if storage.is_remote(output_dir):  # Plots are saved as local files.
    with tempfile.TemporaryDirectory(prefix="report_") as scratch:
      write_report(evaluation_uri, scratch, summary)
      storage.upload_dir(scratch, output_dir)
    return storage.join(output_dir, INDEX)
  ev = tfma_output.load_evaluation(evaluation_uri)
  os.makedirs(output_dir, exist_ok=True)
  has_recall = any(name.startswith("recall_at_") for name in ev.metric_names())
  overall_images = ([plots.plot_recall_curve(ev, output_dir)]
                    if has_recall else [])
  if ev.has_blessed_model:
    overall_images.append(
        plots.plot_blessed_model_comparison(ev, output_dir))
  meta = [("evaluation", ev.uri), ("model", ev.model_location)]
  if ev.has_blessed_model:
    meta.append(("last blessed model", ev.blessed_model_location))
  examples = int(ev.example_count(tfma_output.OVERALL) or 0)
  meta.append(("eval examples", f"{examples}"))
  if summary is not None and summary.split:
    meta.append(("eval split protocol", summary.split))
  body = _meta(meta) + _decision_section(ev, summary)
  body += _overall_section(ev, overall_images)
  if summary is not None:
    body += _baselines_section(summary, ev.metric_names())
  body += _slice_section(ev, plots.plot_slices(ev, output_dir))
  if summary is not None:
    body += (_learning_curves_section(summary, output_dir) +
             _run_section(summary))
  title = "Evaluation report" + (f": run {summary.run_id}" if summary else "")
  return _write(output_dir, _page(title, body))


def _write(output_dir: str, page: str) -> str:
  path = os.path.join(output_dir, INDEX)
  with open(path, "w", encoding="utf-8") as f:
    f.write(page)
  return path


def write_run_report(summary: run_summary.RunSummary,
                     output_dir: Optional[str] = None) -> str:
  """Writes a run's report next to its Evaluator output; returns the path."""
  return write_report(tfma_output.run_evaluation_uri(summary), output_dir,
                      summary)


def _run_legend(a: tfma_output.Evaluation, b: tfma_output.Evaluation) -> str:
  items = []
  for label, ev in (("A", a), ("B", b)):
    verdict = "blessed" if ev.validation.validation_ok else "not blessed"
    examples = int(ev.example_count(tfma_output.OVERALL) or 0)
    items.append((f"run {label} ({verdict}, {examples} eval examples)",
                   ev.uri))
  return _meta(items)


def _compare_overall(a: tfma_output.Evaluation, b: tfma_output.Evaluation,
                     names: list[str]) -> str:
  rows = []
  for output in (evaluation.MODEL_OUTPUT, evaluation.BASELINE_OUTPUT):
    for name in names:
      old = a.value(tfma_output.OVERALL, output, name)
      new = b.value(tfma_output.OVERALL, output, name)
      label = f"{name} ({tfma_output.OUTPUT_LABELS[output]})"
      rows.append([html.escape(label),
                   _number(old), _number(new), _delta(_difference(new, old))])
  return _table(["metric", "A", "B", "B - A"], rows)


def _compare_slices(a: tfma_output.Evaluation, b: tfma_output.Evaluation,
                    names: list[str]) -> str:
  """Per slice family: examples of A and B, then each metric's A, B, B - A."""
  body = ""
  families = tfma_output.slice_families({**a.metrics, **b.metrics})
  for column, keys in families.items():
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
  a, b = tfma_output.load_evaluation(run_a), tfma_output.load_evaluation(run_b)
  os.makedirs(output_dir, exist_ok=True)
  names = [n for n in a.metric_names() if n in b.metric_names()]
  plot = plots.plot_run_comparison(a, b, names, output_dir)
  body = (_run_legend(a, b) + "<h2>Overall</h2>" +
          _compare_overall(a, b, names) + _image(plot, "run A vs run B") +
          "<h2>By slice (model)</h2>" + _compare_slices(a, b, names))
  return _write(output_dir, _page("Evaluation comparison: run A vs run B",
                                  body))
