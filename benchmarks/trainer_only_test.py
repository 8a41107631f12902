"""Tests for the Trainer-only benchmark's command line.

`tests/sasrec_trainer_e2e_test.py` trains through `train_family` on the
shared pipeline run and checks its record against the export.
"""

import pytest

from benchmarks import trainer_only


@pytest.mark.parametrize("text, expected", [
    ("sasrec", ("sasrec", {})),
    ('sasrec:{"epochs": 5, "sampled_negatives": 1024}',
     ("sasrec", {"epochs": 5, "sampled_negatives": 1024})),
])
def test_family_flags_name_a_family_and_its_hparams(text, expected):
  assert trainer_only._family_and_hparams(text) == expected


def test_a_workspace_of_several_pipelines_needs_one_named(tmp_path):
  for name in ("vrec-a", "vrec-b"):
    (tmp_path / "pipelines" / name).mkdir(parents=True)
  with pytest.raises(SystemExit, match="name one of the pipelines"):
    trainer_only.main(["--workspace", str(tmp_path), "--family", "sasrec",
                       "--output", str(tmp_path / "out.json")])
