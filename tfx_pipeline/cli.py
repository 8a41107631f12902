"""Command line: `python -m tfx_pipeline <command>`, also the `vrec` script.

Commands: run, compile, summary, report, compare, import-data, and
build-index, serve, recommend, benchmark, which hand their flags to the
tool they name.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import os
import pathlib
import re
import runpy
import sys
import time
import warnings

from data import importers
from models import families
from tfx_pipeline import config as config_lib
from tfx_pipeline.report import run_lookup
from transforms import filesystems

# `benchmark NAME` runs `python -m benchmarks.NAME`.
BENCHMARKS_PACKAGE = "benchmarks"
# What makes a module of that package a runnable benchmark.
_MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)
# The run summary's key of the EmbeddingBenchmark report artifact.
BENCHMARK_REPORT = "EmbeddingBenchmark.report"
# (command, module whose main(argv) runs it, help line).
_DELEGATED_COMMANDS = (
    ("build-index", "tfx_pipeline.index_builder",
     "embed a model's items and write it with a ScaNN index "
     "(flags of tfx_pipeline.index_builder; Beam flags pass through)"),
    ("serve", "serving.server",
     "serve pushed models over TF Serving's gRPC API (flags of "
     "serving.server)"),
    ("recommend", "serving.client",
     "ask a served model for a user's top items, or a ranker for its "
     "candidates' probabilities (flags of serving.client)"),
    ("benchmark", None,
     "run a benchmark on real data: benchmark NAME [flags of "
     "python -m benchmarks.NAME]"),
)


def _add_location_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags that say which pipeline, in which workspace."""
  defaults = config_lib.PipelineConfig()
  parser.add_argument("--dataset", default=defaults.dataset,
                      help=f"importer name ({', '.join(importers.IMPORTERS)}) "
                      "or 'contract' (default: %(default)s)")
  parser.add_argument("--workspace", default=defaults.workspace,
                      help="where runs write artifacts, MLMD and pushed "
                      "models, local or a URI such as s3://bucket/vrec (MLMD "
                      "then goes to --set metadata_dir=..., default "
                      "./metadata) (default: %(default)s)")
  parser.add_argument("--pipeline-name", default=None,
                      help="default: vrec-<dataset>")


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
  _add_location_arguments(parser)
  parser.add_argument("--dataset-dir", default="",
                      help="a contract directory, local or a URI such as "
                      "s3://bucket/datasets/ml (see README, 'Input data'); "
                      "needed with --dataset contract and by compile")
  parser.add_argument("--model-family", default=None,
                      help="model family the Trainer builds (default: the "
                      "dataset's, by models.families.default_family: "
                      f"{families.default_family('movielens-100k')} on "
                      "movielens-100k, "
                      f"{families.default_family('contract')} on any other)")
  parser.add_argument("--beam-runner", default=None,
                      help="Beam runner, e.g. FlinkRunner, SparkRunner, "
                      "DataflowRunner (default: DirectRunner)")
  parser.add_argument("--beam-arg", action="append", default=[],
                      metavar="ARG", help="extra Beam pipeline arg, repeatable")
  parser.add_argument("--hparam", action="append", default=[],
                      metavar="KEY=VALUE", help="model hyperparameter, repeatable")
  parser.add_argument("--pretrain-hparam", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="hyperparameter of the family's pre-training step "
                      "(e.g. SEMINAR's PSU, COURIER), repeatable")
  parser.add_argument("--set", action="append", default=[], dest="overrides",
                      metavar="KEY=VALUE",
                      help="any PipelineConfig field, groups dotted, "
                      "repeatable (e.g. gate.lower_bound=0.1, seed=1)")
  parser.add_argument("--no-cache", action="store_true",
                      help="re-run every component instead of reusing MLMD cache")


def _split_key_value(text: str) -> tuple[str, str]:
  key, sep, value = text.partition("=")
  if not sep:
    raise SystemExit(f"error: expected KEY=VALUE, got {text!r}")
  return key.strip(), value


def _parse_hparams(texts: list[str]) -> dict:
  return {key: config_lib.parse_hparam(value)
          for key, value in map(_split_key_value, texts)}


def _pipeline_name(args: argparse.Namespace) -> str:
  return args.pipeline_name or f"vrec-{args.dataset}"


def _latest_runs(args: argparse.Namespace):
  """`run_lookup.latest_runs` of the pipeline and workspace `args` name."""
  return run_lookup.latest_runs(args.workspace, _pipeline_name(args),
                                named=bool(args.pipeline_name))


def config_from_args(args: argparse.Namespace) -> config_lib.PipelineConfig:
  """Builds the PipelineConfig the command line describes."""
  beam_args = list(config_lib.PipelineConfig().beam_args)
  if args.beam_runner:
    beam_args.append(f"--runner={args.beam_runner}")
  beam_args += args.beam_arg
  config = config_lib.PipelineConfig(
      pipeline_name=_pipeline_name(args),
      dataset=args.dataset,
      dataset_dir=args.dataset_dir,
      workspace=args.workspace,
      model_family=(args.model_family
                    or families.default_family(args.dataset)),
      hparams=_parse_hparams(args.hparam),
      pretrain_hparams=_parse_hparams(args.pretrain_hparam),
      beam_args=beam_args,
      enable_cache=not args.no_cache)
  for key, value in map(_split_key_value, args.overrides):
    config.set(key, value)
  return config


def _print_summary(summary, model_family: str) -> None:
  """Prints a run's summary; `model_family` where the run records none."""
  from tfx_pipeline import evaluation  # pylint: disable=g-import-not-at-top
  from tfx_pipeline.report import summary_text  # pylint: disable=g-import-not-at-top
  model_family = summary.model_family or model_family
  if families.get(model_family).is_ranking:
    print(summary_text.format_summary(
        summary, "CTR metrics on the eval split (ExampleGen's sampled "
        "negatives):", [(model_family, "")],
        evaluation.RANKING_METRIC_NAMES))
  else:
    print(summary_text.format_summary(
        summary, "Full-ranking metrics on the eval split (history items "
        "excluded):", [(model_family, evaluation.MODEL_OUTPUT),
                       ("most-popular", evaluation.BASELINE_OUTPUT)],
        evaluation.metric_names()))


def _run(args) -> None:
  from tfx_pipeline import local_runner  # pylint: disable=g-import-not-at-top
  config = config_from_args(args)
  print(f"Running pipeline {config.pipeline_name} on {config.dataset} "
        f"({config.dataset_dir}); workspace {config.workspace}", flush=True)
  started = time.time()
  local_runner.run(config)
  print(f"\nPipeline finished in {time.time() - started:.0f} s\n", flush=True)
  from tfx_pipeline.report import run_summary  # pylint: disable=g-import-not-at-top
  summary = run_summary.summarize(config.metadata_path)
  _print_summary(summary, config.model_family)
  if args.demo:
    from tfx_pipeline import serving_demo  # pylint: disable=g-import-not-at-top
    if families.get(config.model_family).is_ranking:
      print("\nThe retrieval demo needs a retrieval family; a ranking model "
            "scores given candidates (its serving_default signature).")
    elif serving_demo.has_pushed_model(config):
      print("\n" + serving_demo.recommend_for_eval_users(config), flush=True)
    else:
      print("\nNo pushed model to serve yet.")
  _write_histories(config)
  benchmark_dir = summary.artifacts.get(BENCHMARK_REPORT)
  if benchmark_dir:
    from tfx_pipeline.components import embedding_benchmark  # pylint: disable=g-import-not-at-top
    print("\nEmbedding benchmark (mean ± std over probe seeds):\n" +
          embedding_benchmark.markdown_report(
              embedding_benchmark.read_report(benchmark_dir)) +
          f"\n{benchmark_dir}", flush=True)
  from tfx_pipeline.report import html_page  # pylint: disable=g-import-not-at-top
  print(f"\nHTML report: {html_page.write_run_report(summary)}", flush=True)


def _write_histories(config: config_lib.PipelineConfig) -> None:
  """After a push, every user's latest history for the online store."""
  from tfx_pipeline import history_writer  # pylint: disable=g-import-not-at-top
  from tfx_pipeline import serving_demo  # pylint: disable=g-import-not-at-top
  if (families.get(config.model_family).is_ranking
      or not serving_demo.has_pushed_model(config)):
    return
  directory = history_writer.history_dir(config)
  snapshot = history_writer.write_histories(config.dataset_dir, directory)
  print(f"\nUser histories for the online store: {len(snapshot.histories)} "
        f"users in {directory} (serve with --history_store URL "
        f"--history_dir {directory} --rebuild_history_store)", flush=True)


def _compile(args) -> None:
  from tfx_pipeline import kubeflow_v2_runner  # pylint: disable=g-import-not-at-top
  config = config_from_args(args)
  if not args.dataset_dir:
    raise kubeflow_v2_runner.DatasetNotUploadedError(
        "compile needs --dataset-dir, the URI of a contract dataset the "
        f"cluster can read; {kubeflow_v2_runner.upload_hint(config)}")
  path = kubeflow_v2_runner.compile_pipeline(config, args.output, args.target)
  print(f"Wrote KFP v2 pipeline spec for {args.target} to {path}")


def _summary(args) -> None:
  model_family = config_from_args(args).model_family
  for _, summary in _latest_runs(args):
    _print_summary(summary, model_family)


def _report(args) -> None:
  from tfx_pipeline.report import html_page  # pylint: disable=g-import-not-at-top
  if args.evaluation_uri:
    print(f"HTML report: "
          f"{html_page.write_report(args.evaluation_uri, args.output_dir)}")
    return
  runs = list(_latest_runs(args))
  for pipeline_name, summary in runs:
    output_dir = args.output_dir
    if output_dir and len(runs) > 1:
      output_dir = os.path.join(output_dir, pipeline_name)
    print(f"HTML report: "
          f"{html_page.write_run_report(summary, output_dir)}")


def _compare(args) -> None:
  from tfx_pipeline.report import html_page  # pylint: disable=g-import-not-at-top
  path = html_page.compare(
      run_lookup.evaluation_uri(args.run_a, args.pipeline_name),
      run_lookup.evaluation_uri(args.run_b, args.pipeline_name),
      args.output_dir)
  print(f"HTML report: {path}")


def _delegate(module_name: str | None, args) -> int:
  """Runs another tool's main(argv) with the flags given after the command."""
  # Tools that name themselves after argv[0] in their usage line name this
  # command instead.
  sys.argv[:1] = [f"python -m tfx_pipeline {args.command}"]
  if module_name is None:
    return _run_benchmark(args.delegated_argv)
  main_function = importlib.import_module(module_name).main
  return main_function(args.delegated_argv) or 0


def _benchmark_names() -> list[str]:
  """The runnable modules of the benchmarks package.

  A benchmark is a module that runs as a script (`if __name__ ==
  "__main__":`); its tests and the helper modules benchmarks share do not.
  Read from the source, not imported: the package sits a floor above.
  """
  spec = importlib.util.find_spec(BENCHMARKS_PACKAGE)
  return sorted(
      path.stem for directory in spec.submodule_search_locations
      for path in pathlib.Path(directory).glob("*.py")
      if _MAIN_GUARD.search(path.read_text(encoding="utf-8")))


def _run_benchmark(argv: list[str]) -> int:
  """`benchmark NAME [flags]`: `python -m benchmarks.NAME [flags]`, here.

  The benchmarks sit a floor above this package, so they are run by module
  name, never imported from here; that works from an installed wheel too.
  """
  parser = argparse.ArgumentParser(
      prog="python -m tfx_pipeline benchmark",
      description="Runs a benchmark module, python -m benchmarks.NAME, with "
      "its own flags (NAME --help lists them).")
  parser.add_argument("name", choices=_benchmark_names())
  parser.add_argument("flags", nargs=argparse.REMAINDER,
                      help="the benchmark's flags")
  parsed = parser.parse_args(argv)
  module = f"{BENCHMARKS_PACKAGE}.{parsed.name}"
  sys.argv = [f"python -m {module}", *parsed.flags]
  try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
  except SystemExit as finished:
    if finished.code is None or isinstance(finished.code, int):
      return finished.code or 0
    raise
  return 0


def _import_data(args) -> None:
  path = importers.import_dataset(args.dataset, importers.default_source_root(),
                                  args.output)
  print(f"Wrote contract dataset {args.dataset} to {path}")


def _add_pipeline_commands(commands) -> None:
  """`run` and `compile`: the pipeline, run here or compiled for Kubeflow."""
  run = commands.add_parser(
      "run", help="run the pipeline locally and print a summary",
      description="Run every component locally (LocalDagRunner, Beam "
      "DirectRunner, SQLite MLMD), print timings, metrics and the push, then "
      "serve the pushed model with the local gRPC server, show a few "
      "users' recommendations and write the HTML evaluation report.")
  _add_config_arguments(run)
  run.add_argument("--no-demo", dest="demo", action="store_false",
                   help="skip serving the pushed model to a few eval users "
                   "over gRPC at the end")
  run.set_defaults(handler=_run)

  compile_ = commands.add_parser(
      "compile", help="compile the pipeline to a Kubeflow Pipelines v2 JSON",
      description="Compile the same pipeline for Kubeflow Pipelines v2.")
  _add_config_arguments(compile_)
  compile_.add_argument("--output", default="vrec_pipeline.json",
                        help="pipeline spec path (default: %(default)s)")
  # kubeflow_v2_runner.TARGETS, spelt out: importing it loads TFX.
  compile_.add_argument(
      "--target", choices=("vertex", "kfp"), default="vertex",
      help="backend: vertex (Vertex AI Pipelines) or kfp (open-source "
      "Kubeflow Pipelines 2.x, no resolver tasks) (default: %(default)s)")
  compile_.set_defaults(handler=_compile)


def _add_reading_commands(commands) -> None:
  """`summary`, `report` and `compare`: what recorded runs did."""
  summary = commands.add_parser(
      "summary", help="print the summary of the latest local run",
      description="Print timings, metrics, blessing and push of the newest "
      "run recorded in MLMD: of the named pipeline, or of every pipeline in "
      "the workspace when vrec-<dataset> has none.")
  _add_config_arguments(summary)
  summary.set_defaults(handler=_summary)

  report = commands.add_parser(
      "report", help="write the HTML evaluation report of the latest run",
      description="Write an HTML report (metric tables overall and per "
      "slice, plots, the blessing decision and why) of the newest run's "
      "Evaluator output, or of --evaluation-uri, and print its path.")
  _add_location_arguments(report)
  report.add_argument("--evaluation-uri", default="",
                      help="an Evaluator output directory to report on "
                      "instead of the latest run's")
  report.add_argument("--output-dir", default=None,
                      help="default: <evaluation uri>/report")
  report.set_defaults(handler=_report)

  compare = commands.add_parser(
      "compare", help="write an HTML report comparing two runs",
      description="Compare two runs side by side (overall and per-slice "
      "metrics with deltas B - A, and a plot) in an HTML report. Each run is "
      "an Evaluator output directory or a workspace (its newest run).")
  compare.add_argument("run_a", help="Evaluator output or workspace (A)")
  compare.add_argument("run_b", help="Evaluator output or workspace (B)")
  compare.add_argument("--output-dir", required=True,
                       help="where to write index.html and its plot")
  compare.add_argument("--pipeline-name", default=None,
                       help="pipeline to read in workspaces holding several")
  compare.set_defaults(handler=_compare)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m tfx_pipeline",
      description="Train, evaluate, gate and push recommendation models "
      "with TFX.")
  parser.add_argument("-v", "--verbose", action="store_true",
                      help="show TFX/Beam INFO logs")
  commands = parser.add_subparsers(dest="command", required=True)
  _add_pipeline_commands(commands)
  _add_reading_commands(commands)
  import_data = commands.add_parser(
      "import-data", help="convert a public dataset into the input contract",
      description="Convert a public dataset from the data directory into "
      "the input contract (see README, 'Input data'), on local disk or in "
      "object storage (see README, 'Storage').")
  import_data.add_argument(
      "dataset", help=", ".join(importers.IMPORTERS))
  import_data.add_argument(
      "output", help="directory to write: a local folder or a URI such as "
      "s3://bucket/datasets/movielens-100k")
  import_data.set_defaults(handler=_import_data)

  for name, module_name, help_text in _DELEGATED_COMMANDS:
    # No help or flags of our own: `--help` and every flag go to the tool.
    delegated = commands.add_parser(name, help=help_text, add_help=False)
    delegated.set_defaults(handler=functools.partial(_delegate, module_name),
                           delegated=True)
  return parser


_PROGRESS_PREFIXES = ("Component %s is running", "Component %s is finished")


class _ProgressOnly(logging.Filter):
  """Keeps the runner's per-component progress lines and real errors."""

  def filter(self, record: logging.LogRecord) -> bool:
    return (record.levelno >= logging.ERROR or
            str(record.msg).startswith(_PROGRESS_PREFIXES))


def _configure_logging(verbose: bool) -> None:
  warnings.filterwarnings("ignore", category=FutureWarning)
  warnings.filterwarnings("ignore", category=DeprecationWarning)
  handler = logging.StreamHandler()
  handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
  if not verbose:
    handler.addFilter(_ProgressOnly())
  root = logging.getLogger()
  root.handlers[:] = [handler]
  root.setLevel(logging.INFO)
  # TensorFlow's logger has a handler of its own; route it through ours.
  tf_logger = logging.getLogger("tensorflow")
  tf_logger.handlers[:] = []
  tf_logger.propagate = True


def _parse(argv) -> argparse.Namespace:
  """Parses argv; flags after a delegated command are kept for its tool."""
  parser = build_parser()
  args, rest = parser.parse_known_args(argv)
  args.delegated = getattr(args, "delegated", False)
  if rest and not args.delegated:
    parser.error(f"unrecognized arguments: {' '.join(rest)}")
  args.delegated_argv = rest
  return args


def exit_with_main() -> None:
  """The `vrec` script: `main()`, then an exit that is safe after S3 use."""
  filesystems.exit_process(main())


def main(argv=None) -> int:
  args = _parse(argv)
  # TFX's Beam executors parse sys.argv with absl flags, where our own options
  # (e.g. -v) mean something else.
  sys.argv = sys.argv[:1]
  # Delegated tools set up their own logging, as when run on their own.
  if not args.delegated:
    _configure_logging(args.verbose)
  try:
    return args.handler(args) or 0
  except Exception as error:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1
