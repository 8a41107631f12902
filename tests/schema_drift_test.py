"""ExampleValidator + AnomaliesGate stop a run whose data drifted from the schema."""

import os

import pytest

from tests import pipeline_fixtures
from tfx_pipeline import local_runner
from tfx_pipeline.report import run_summary

pytestmark = pytest.mark.e2e


def _new_item_type(interactions):
  drifted = interactions.copy()
  drifted.loc[drifted.index % 3 == 0, "item_type"] = "podcast"
  return drifted


def test_drifted_item_type_stops_the_run_before_transform(tmp_path):
  dataset_dir = pipeline_fixtures.write_movielens_sample(
      tmp_path / "data", n_users=40, transform=_new_item_type)
  config = pipeline_fixtures.sample_config(tmp_path / "workspace", dataset_dir)

  with pytest.raises(Exception, match=r"item_type") as raised:
    local_runner.run(config)
  assert "curated schema" in str(raised.value)

  states = {run.component: run.state for run in
            run_summary.summarize(config.metadata_path).components}
  assert states["ExampleValidator"] == "complete"
  assert states["AnomaliesGate"] == "failed"
  assert "Transform" not in states and "Trainer" not in states
  assert not os.path.exists(config.push_dir)
