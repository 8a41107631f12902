"""Tests for the long-history benchmark's metrics, batching and report."""

import json
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import seminar_long
from models.seminar import ctr_ranker
from models.seminar import item_features
from models.seminar import model


def examples(histories, labels, users):
  history = np.array(histories, np.int32)
  return {ctr_ranker.HISTORY: history,
          ctr_ranker.KEYWORDS: history[..., np.newaxis],
          ctr_ranker.CANDIDATE: np.arange(len(history), dtype=np.int32),
          ctr_ranker.LABEL: np.array(labels, np.float32),
          "user": np.array(users, np.int32)}


def test_predict_keeps_example_order_over_trimmed_length_batches():
  data = examples([[1, 2, 3], [4, 0, 0], [5, 6, 0], [7, 0, 0]],
                  [1, 0, 1, 0], [0, 0, 1, 1])
  widths = []

  def logits(batch):
    widths.append(batch[ctr_ranker.HISTORY].shape[1])
    # The sum of the history and 100 x the candidate: its own example's.
    return tf.constant(batch[ctr_ranker.HISTORY].sum(1) +
                       100 * batch[ctr_ranker.CANDIDATE], tf.float32)

  scores = seminar_long.predict(logits, data, positions_per_batch=2)
  np.testing.assert_array_equal(scores, [6, 104, 211, 307])
  # Two one-item histories, then a batch per longer one, each trimmed.
  assert widths == [1, 2, 3]


def test_ctr_metrics_known_values():
  data = examples([[1], [1], [1], [1]], [1, 0, 1, 0], [0, 0, 1, 1])
  metrics = seminar_long.ctr_metrics(data, np.array([2.0, 0.0, -1.0, -3.0]))
  # Each user ranks their positive first (AUC 1); across users, user 1's
  # positive (-1) falls below user 0's negative (0): 3 of 4 pairs right.
  assert metrics["gauc"] == pytest.approx(1.0)
  assert metrics["auc"] == pytest.approx(0.75)
  expected = np.mean([np.log1p(np.exp(-2.0)), np.log(2.0),
                      np.log1p(np.exp(1.0)), np.log1p(np.exp(-3.0))])
  assert metrics["logloss"] == pytest.approx(expected)


def runs(values_by_model):
  return {name: [{"auc": auc, "gauc": auc, "logloss": 0.5, "epoch": 1,
                  "seconds": 1.0} for auc in values]
          for name, values in values_by_model.items()}


def test_report_names_the_strongest_baseline_and_every_seed_wins(tmp_path):
  paths = []
  # The seminar row's second seed comes from a third file.
  for part, models in enumerate(({"din": [0.6, 0.6], "sim": [0.8, 0.7]},
                                 {"seminar": [0.81], "twin": [0.9, 0.55]},
                                 {"seminar": [0.72]})):
    paths.append(tmp_path / f"part{part}.json")
    paths[-1].write_text(json.dumps({
        "runs": runs(models), "command": f"part {part}",
        "args": {"models": sorted(models)},
        "seconds": 1.0, "machine": {}, "dataset": seminar_long.TAOBAO},
        sort_keys=True))
  output = tmp_path / "merged.json"
  seminar_long.main(["--merge", *map(str, paths), "--output", str(output)])
  merged = json.loads(output.read_text())
  # Mean AUC: sim 0.75, twin 0.725, din 0.6.
  assert merged["strongest_baseline"] == "sim"
  rows = {line.split(" | ")[0].strip("| "): line
          for line in merged["table"].splitlines()}
  assert rows["seminar"].endswith("AUC yes, GAUC yes |")
  assert rows["twin"].endswith("AUC no, GAUC no |")
  assert [part["command"] for part in merged["parts"]] == [
      "part 0", "part 1", "part 2"]
  assert merged["stats"]["seminar"]["auc"]["values"] == [0.81, 0.72]
  assert merged["dataset"] == seminar_long.TAOBAO
  # A merged file merges again, with its parts.
  again = tmp_path / "again.json"
  seminar_long.main(["--merge", str(output), str(paths[0]), "--output",
                     str(again)])
  assert [part["command"] for part in json.loads(again.read_text())[
      "parts"]] == ["part 0", "part 1", "part 2", "part 0"]
  # PATH:MODEL keeps only that model's runs from the file: a rerun of sim
  # replaces the first file's.
  rerun = tmp_path / "sim_rerun.json"
  rerun.write_text(json.dumps({
      "runs": runs({"sim": [0.95, 0.94]}), "command": "rerun",
      "args": {"models": ["sim"]},
      "seconds": 1.0, "machine": {}, "dataset": seminar_long.TAOBAO}))
  seminar_long.main(["--merge", f"{paths[0]}:din", *map(str, paths[1:]),
                     str(rerun), "--output", str(again)])
  replaced = json.loads(again.read_text())
  assert replaced["stats"]["sim"]["auc"]["values"] == [0.95, 0.94]
  assert [part.get("models_kept") for part in replaced["parts"]] == [
      ["din"], None, None, None]
  assert replaced["stats"]["din"]["auc"]["values"] == [0.6, 0.6]
  # Taken again with a selector, a part keeps only what both selectors kept.
  twice = tmp_path / "twice.json"
  seminar_long.main(["--merge", f"{again}:din,sim", "--output", str(twice)])
  assert [part.get("models_kept") for part in json.loads(
      twice.read_text())["parts"]] == [["din"], [], [], ["sim"]]
  with pytest.raises(SystemExit, match=r"no runs of \['sasrec'\]"):
    seminar_long.main(["--merge", f"{paths[0]}:din,sasrec", "--output",
                       str(again)])
  other = json.loads(paths[-1].read_text())
  paths[-1].write_text(json.dumps({**other, "dataset": seminar_long.HM}))
  with pytest.raises(SystemExit, match="merge one dataset"):
    seminar_long.main(["--merge", *map(str, paths), "--output", str(output)])


@pytest.mark.parametrize("name", seminar_long.BASELINES)
def test_every_baseline_scores_a_batch_of_long_histories(name):
  """Each baseline builds from the task's item features and gives one logit
  per candidate, whatever the history's width."""
  args = seminar_long._parser().parse_args(
      ["--embedding-dim", "4", "--sasrec-length", "3", "--top-k", "2"])
  item_categories = np.array([0, 1, 1, 2, 2, 3, 3])
  task = types.SimpleNamespace(
      catalogue=lambda images: item_features.ItemFeatures(item_categories, 4),
      item_tokens=item_categories[:, np.newaxis], num_tokens=4)
  tf.keras.utils.set_random_seed(0)
  ranker, pretrainer = seminar_long.build_ranker(name, task, args)
  batch = examples([[1, 2, 3, 4, 5, 6, 0], [2, 0, 0, 0, 0, 0, 0]], [1, 0],
                   [0, 0])
  assert pretrainer is None
  assert ranker.logits({key: tf.constant(value) for key, value in
                        batch.items()}).shape == (2,)


def test_an_item_without_an_image_vector_is_refused(tmp_path):
  path = tmp_path / "vectors.npz"
  np.savez(path, item_id=np.array(["a", "c"]),
           vector=np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
  np.testing.assert_array_equal(
      seminar_long.image_table(str(path), ["", "c", "a"]),
      [[0.0, 0.0], [3.0, 4.0], [1.0, 2.0]])
  with pytest.raises(SystemExit, match=r"no vector for 1 of the 3 items, "
                     r"e\.g\. \['b'\]"):
    seminar_long.image_table(str(path), ["", "a", "b", "c"])


class _SleepingScorer:
  """`score_selected` that sleeps 4 ms in exact mode and 1 ms otherwise, and
  records each call's mode as it runs."""

  def __init__(self):
    self.calls = []

  def score_selected(self, items, keywords, candidates, mode):
    del items, keywords

    def run(candidates):
      self.calls.append(mode)
      time.sleep(0.004 if mode == model.ScoringMode.EXACT else 0.001)
      return np.zeros(candidates.shape, np.float32)

    return tf.py_function(run, [candidates], tf.float32)


def test_request_timing_rotates_the_modes_and_compares_each_request():
  # Three requests (a positive and its negative each), one history too
  # short to time.
  test = examples([[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6], [7, 8, 0],
                   [7, 8, 0], [9, 0, 0], [9, 0, 0]], [1, 0] * 4, [1] * 8)
  lengths = seminar_long.history_lengths(test)
  scorer = _SleepingScorer()
  args = types.SimpleNamespace(negatives=1, pq_min_history=2,
                               timing_repeats=2)
  result = seminar_long.request_seconds(scorer, test, lengths, args, 8)
  modes = list(model.ScoringMode)
  # Each pass: request i's modes start at mode i.
  one_pass = [modes[(i + j) % 3] for i in range(3) for j in range(3)]
  assert scorer.calls == one_pass * 3 and result["requests_timed"] == 3
  assert result["r8_request_seconds_exact"] >= 0.004
  for mode in ("pq", "pq_xla"):
    assert 0.2 < result[f"r8_request_{mode}_over_exact"] < 0.6
