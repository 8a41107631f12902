"""Tests for the benchmarks' shared helpers."""

import argparse
import json
import pathlib

import numpy as np
import pytest

from benchmarks import common
from data import contract
from data import synthetic
from offline_eval import datasets


def _parser(**kwargs):
  parser = argparse.ArgumentParser()
  common.add_dataset_arguments(parser, ["movielens-100k", "amazon-grocery"],
                               **kwargs)
  return parser


def test_dataset_flags_take_a_built_in_name_or_a_contract_directory():
  args = _parser(default="movielens-100k").parse_args(
      ["--dataset", "contract", "--dataset-dir", "/data/shop"])
  assert (args.dataset, args.dataset_dir) == ("contract", "/data/shop")
  assert common.dataset_label(args.dataset, args) == "contract-shop"
  assert common.dataset_label("movielens-100k", args) == "movielens-100k"
  with pytest.raises(SystemExit):
    _parser(default="movielens-100k").parse_args(["--dataset", "nope"])


def test_several_datasets_answer_to_dataset_and_datasets():
  parser = _parser(default=["movielens-100k"], multiple=True)
  assert parser.parse_args(["--dataset", "contract"]).datasets == ["contract"]
  assert parser.parse_args(
      ["--datasets", "amazon-grocery", "movielens-100k"]).datasets == [
          "amazon-grocery", "movielens-100k"]


def test_a_contract_directory_loads_as_sequences_and_as_a_dataset(tmp_path):
  contract.write_dataset(synthetic.generate(n_users=12, n_items=20), tmp_path)
  args = _parser(default="movielens-100k").parse_args(
      ["--dataset", "contract", "--dataset-dir", str(tmp_path)])
  sequences = common.load_sequences(args.dataset, args)
  assert sequences.num_users == 12
  raw = common.load_interactions(args.dataset, args)
  assert set(raw.interactions["user_id"]) >= set(sequences.user_ids)
  with pytest.raises(SystemExit, match="--dataset-dir"):
    common.load_interactions(datasets.CONTRACT,
                             argparse.Namespace(dataset_dir=""))


def test_command_reproduces_the_run():
  assert common.command("benchmarks.gmn", ["--seeds", "0", "--tag", "a b"]) == (
      "python -m benchmarks.gmn --seeds 0 --tag 'a b'")


def test_results_sit_beside_the_code_in_a_checkout():
  assert common.RESULTS_DIR == (
      pathlib.Path(common.__file__).resolve().parent / "results")


def test_write_results_writes_json(tmp_path, capsys):
  path = common.write_results(tmp_path / "deep" / "r.json", {"auc": 0.5})
  assert json.loads(path.read_text()) == {"auc": 0.5}
  assert str(path) in capsys.readouterr().out


def test_run_datasets_reports_each_and_writes_all(tmp_path, capsys):
  args = argparse.Namespace(datasets=["movielens-100k"], dataset_dir="",
                            output=tmp_path / "r.json")
  results = common.run_datasets(
      "benchmarks.x", ["--datasets", "movielens-100k"], args,
      lambda name, _: {"items": len(name)},
      lambda label, result: f"{label}: {result['items']} items")
  assert results == {"movielens-100k": {"items": 14}}
  assert "movielens-100k: 14 items" in capsys.readouterr().out
  written = json.loads((tmp_path / "r.json").read_text())
  assert written["command"] == "python -m benchmarks.x --datasets movielens-100k"
  assert written["results"] == results
  assert written["args"]["output"] == str(tmp_path / "r.json")


def test_percentile_ms_known_values():
  latencies = [0.001, 0.002, 0.003, 0.004, 0.005]
  assert common.percentile_ms(latencies, 50) == 3.0
  assert common.percentile_ms(latencies, 100) == 5.0


def test_machine_and_memory_are_reported():
  assert common.machine()["cpus"] >= 1
  assert common.peak_rss_mib() > 0


def test_aligned_table_known_layout():
  assert common.aligned_table(["metric", "value"],
                              [["auc", 0.5], ["recall@50", 0.25]]) == (
                                  "metric      value\n"
                                  "auc        0.5000\n"
                                  "recall@50  0.2500")


def test_save_log_log_figure_writes_a_png_with_log_axes(tmp_path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  figure, axis = pyplot.subplots()
  axis.plot([1, 10, 100], [2, 20, 200])
  path = common.save_log_log_figure(figure, [(axis, "time", "seconds")],
                                    "items", tmp_path / "sub" / "plot.png")
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert (axis.get_xscale(), axis.get_yscale()) == ("log", "log")
  assert (axis.get_xlabel(), axis.get_ylabel(), axis.get_title()) == (
      "items", "seconds", "time")


def test_percentile_difference_interval_is_a_point_for_constant_samples():
  assert common.percentile_difference_ci_ms([0.005] * 50, [0.003] * 80,
                                            99) == (2.0, 2.0)


def test_percentile_difference_interval_holds_the_difference_and_narrows():
  rng = np.random.default_rng(1)

  def interval(count):
    slower = rng.exponential(0.004, count) + 0.002
    faster = rng.exponential(0.004, count)
    return common.percentile_difference_ci_ms(slower, faster, 99,
                                              resamples=500)

  wide, narrow = interval(300), interval(30000)
  # The true difference of the 99th percentiles is 2 ms.
  assert wide[0] < 2.0 < wide[1] and narrow[0] < 2.0 < narrow[1]
  assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 3


def test_percentile_difference_interval_resamples_both_samples():
  varied = np.random.default_rng(2).exponential(0.004, 500)
  constant = np.full(500, 0.004)
  for latencies, baseline in ((varied, constant), (constant, varied)):
    low, high = common.percentile_difference_ci_ms(latencies, baseline, 99,
                                                   resamples=200)
    assert high - low > 0.5
