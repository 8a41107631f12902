"""Tests for the command line: help, delegation and one-line errors."""

import pytest

from serving import client
from tfx_pipeline import cli

# Every subcommand, and words from its help that say what it is for.
PURPOSES = {
    "run": "Run every component locally",
    "compile": "Kubeflow Pipelines v2",
    "summary": "newest run recorded in MLMD",
    "report": "HTML report",
    "compare": "Compare two runs side by side",
    "import-data": "input contract",
    "build-index": "ScaNN index",
    "serve": "gRPC",
    "recommend": "top items",
    "benchmark": "Runs a benchmark module, python -m benchmarks.NAME",
}


def test_top_level_help_lists_every_subcommand(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["--help"])
  assert exit_info.value.code == 0
  out = capsys.readouterr().out
  for command in PURPOSES:
    assert command in out


@pytest.mark.parametrize("command", sorted(PURPOSES))
def test_every_subcommand_has_help_saying_what_it_does(command, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main([command, "--help"])
  assert exit_info.value.code == 0
  out = " ".join(capsys.readouterr().out.split())  # undo line wrapping
  assert PURPOSES[command] in out


def _assert_one_line_error(capsys, *words):
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and err.startswith("error: "), err
  for word in words:
    assert word in err


def test_unknown_dataset_exits_non_zero_with_one_line_error(tmp_path, capsys):
  assert cli.main(["run", "--dataset", "no-such-dataset", "--workspace",
                   str(tmp_path), "--no-demo"]) != 0
  _assert_one_line_error(capsys, "no-such-dataset")


def test_report_without_runs_exits_non_zero_with_one_line_error(tmp_path,
                                                                capsys):
  assert cli.main(["report", "--workspace", str(tmp_path)]) != 0
  _assert_one_line_error(capsys, "no runs in", str(tmp_path))


def test_unknown_flag_of_own_command_is_a_usage_error():
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["summary", "--no-such-flag"])
  assert exit_info.value.code == 2


def test_delegated_command_gets_every_flag_and_its_exit_code(monkeypatch):
  received = []
  monkeypatch.setattr(client, "main", lambda argv: received.append(argv) or 3)
  argv = ["--model_name", "retrieval", "--user_id", "7", "-v"]
  assert cli.main(["recommend", *argv]) == 3
  assert received == [argv]


def test_benchmark_runs_the_named_module_with_its_flags(monkeypatch):
  ran = []

  def run_module(module, run_name, alter_sys):
    ran.append((module, run_name, list(cli.sys.argv)))
    raise SystemExit(0)

  monkeypatch.setattr(cli.runpy, "run_module", run_module)
  assert cli.main(["benchmark", "sequential", "--dataset", "contract"]) == 0
  assert ran == [("benchmarks.sequential", "__main__",
                  ["python -m benchmarks.sequential", "--dataset",
                   "contract"])]


def test_benchmark_help_names_every_benchmark_module(capsys):
  with pytest.raises(SystemExit):
    cli.main(["benchmark", "--help"])
  out = capsys.readouterr().out
  assert "pipeline_benchmark" in out and "sequential" in out
  assert "common" not in out


def test_a_benchmark_is_a_module_that_runs_as_a_script(tmp_path, monkeypatch):
  package = tmp_path / "some_benchmarks"
  package.mkdir()
  (package / "__init__.py").write_text("")
  (package / "fast.py").write_text(
      "def main():\n  pass\n\n\nif __name__ == \"__main__\":\n  main()\n")
  (package / "shared_helper.py").write_text("def measure():\n  pass\n")
  (package / "fast_test.py").write_text("from some_benchmarks import fast\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setattr(cli, "BENCHMARKS_PACKAGE", "some_benchmarks")
  assert cli._benchmark_names() == ["fast"]  # pylint: disable=protected-access


@pytest.mark.parametrize("dataset, flags, family", [
    ("movielens-100k", [], "two_tower"),
    ("contract", ["--dataset-dir", "/data/mine"], "sasrec"),
    ("amazon-grocery", [], "sasrec"),
    ("amazon-grocery", ["--model-family", "sasrec"], "sasrec"),
])
def test_run_trains_the_datasets_default_family_unless_one_is_named(
    dataset, flags, family):
  args = cli.build_parser().parse_args(["run", "--dataset", dataset, *flags])
  assert cli.config_from_args(args).model_family == family
