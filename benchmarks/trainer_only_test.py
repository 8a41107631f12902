"""Tests for the Trainer-only benchmark's command line.

`tests/sasrec_trainer_e2e_test.py` trains through `train_family` on the
shared pipeline run and checks its record against the export.
"""

import json

import pytest

from benchmarks import trainer_only


@pytest.mark.parametrize("text, expected", [
    ("sasrec", ("sasrec", {})),
    ('sasrec:{"epochs": 5, "sampled_softmax": true}',
     ("sasrec", {"epochs": 5, "sampled_softmax": True})),
])
def test_family_flags_name_a_family_and_its_hparams(text, expected):
  assert trainer_only._family_and_hparams(text) == expected


def test_a_workspace_of_several_pipelines_needs_one_named(tmp_path):
  for name in ("vrec-a", "vrec-b"):
    (tmp_path / "pipelines" / name).mkdir(parents=True)
  with pytest.raises(SystemExit, match="name one of the pipelines"):
    trainer_only.main(["--workspace", str(tmp_path), "--family", "sasrec",
                       "--output", str(tmp_path / "out.json")])


def test_seed_summary_is_each_family_and_hparams_mean_and_sample_std():
  def run(hparams, seed, recall):
    return {"family": "sasrec", "hparams": hparams, "seed": seed,
            "metrics": {name: recall for name in trainer_only._METRICS}}

  summary = trainer_only.seed_summary([
      run({}, 0, 0.1), run({"sampled_softmax": True}, 0, 0.5),
      run({}, 1, 0.3), run({"sampled_softmax": True}, 1, 0.5)])
  assert [row["hparams"] for row in summary] == [{}, {"sampled_softmax": True}]
  assert summary[0]["seeds"] == [0, 1]
  assert summary[0]["ndcg_at_10"]["mean"] == pytest.approx(0.2)
  assert summary[0]["ndcg_at_10"]["std"] == pytest.approx(0.1 * 2**0.5)
  assert summary[1]["recall_at_10"] == {"mean": 0.5, "std": 0.0}


def test_beating_the_baseline_needs_every_metric_above_it():
  baseline = trainer_only.run_summary.Scorer(
      "ease", False, {"recall_at_10": 0.1, "recall_at_50": 0.3,
                      "recall_at_100": 0.4, "ndcg_at_10": 0.05})
  above = {"recall_at_10": 0.11, "recall_at_50": 0.31, "recall_at_100": 0.3,
           "ndcg_at_10": 0.06}
  # Recall@100 is not among the metrics to beat.
  assert trainer_only.beats(above, baseline)
  assert not trainer_only.beats(dict(above, ndcg_at_10=0.05), baseline)
  assert not trainer_only.beats(dict(above, recall_at_10=0.09), baseline)


def test_each_finished_run_is_written_before_the_next_starts(tmp_path,
                                                             monkeypatch):
  (tmp_path / "pipelines" / "vrec-a").mkdir(parents=True)
  ease = trainer_only.run_summary.Scorer(
      "ease", False, {"recall_at_10": 0.1, "recall_at_50": 0.2,
                      "recall_at_100": 0.3, "ndcg_at_10": 0.05})
  monkeypatch.setattr(trainer_only.run_summary, "summarize",
                      lambda _: trainer_only.run_summary.RunSummary(
                          "run", [], {trainer_only.TRANSFORMED_EXAMPLES: "t"},
                          {}, None, None))
  monkeypatch.setattr(trainer_only.run_summary, "overall_scorers",
                      lambda *_: [ease])
  monkeypatch.setattr(trainer_only, "run_examples", lambda _: None)
  output = tmp_path / "out.json"

  def train_family(summary, directory, family, hparams, seed, examples):
    del summary, directory, examples
    if seed == 1:  # The second run: the benchmark is stopped.
      raise KeyboardInterrupt
    return {"family": family, "hparams": hparams, "seed": seed,
            "metrics": {"recall_at_10": 0.2, "recall_at_50": 0.3,
                        "recall_at_100": 0.4, "ndcg_at_10": 0.1}}
  monkeypatch.setattr(trainer_only, "train_family", train_family)

  with pytest.raises(KeyboardInterrupt):
    trainer_only.main(["--workspace", str(tmp_path), "--family", "sasrec",
                       "--seed", "0", "1", "--output", str(output)])
  record = json.loads(output.read_text())
  assert not record["complete"]
  assert [(run["seed"], run["beats_strongest_baseline"])
          for run in record["runs"]] == [(0, True)]
  assert record["strongest_baseline"] == "ease"
