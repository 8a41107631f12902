"""Tests for the DirectRunner memory benchmark."""

import json

import apache_beam as beam
from apache_beam.testing import util as beam_testing
import pytest

from benchmarks import beam_worker_memory


def test_shards_hold_every_event_once_with_users_of_fixed_length():
  events = [event for shard in range(3)
            for event in beam_worker_memory.synthetic_events(shard, 8, 4)]
  assert sorted(timestamp for _, (timestamp, _) in events) == list(range(24))
  users = {}
  for user, _ in events:
    users[user] = users.get(user, 0) + 1
  assert set(users.values()) == {4} and len(users) == 6


def test_sequence_rows_are_in_time_order_with_the_side_input():
  _, sequence = beam_worker_memory.user_sequence(
      "u", [(7, "item_b"), (3, "item_a")])
  assert list(beam_worker_memory.sequence_rows(("u", sequence), 99)) == [
      "u,item_a,3,0,99", "u,item_b,7,1,99"]


def test_pipeline_writes_one_record_per_event():
  with beam.Pipeline() as pipeline:
    beam_worker_memory.build(pipeline, size=60, shards=3, events_per_user=7)


def test_pipeline_fails_when_a_record_is_lost(monkeypatch):
  monkeypatch.setattr(beam_worker_memory, "sequence_rows",
                      lambda sequence, total: iter(sequence[1][1:]))
  with pytest.raises(Exception, match="expected 60"):
    with beam.Pipeline() as pipeline:
      beam_worker_memory.build(pipeline, size=60, shards=3, events_per_user=7)


def test_sizes_must_split_into_whole_shards():
  with pytest.raises(ValueError, match="multiple of 7 shards"):
    with beam.Pipeline() as pipeline:
      beam_worker_memory.build(pipeline, size=60, shards=7, events_per_user=7)


def test_growth_is_against_the_smallest_size_of_the_same_worker_count():
  def run(size, workers, main, worker, status="ok"):
    return {"size": size, "workers": workers, "status": status,
            "peak_main_rss_mib": main, "peak_worker_rss_mib": worker,
            "wall_s": size / 100}
  growth = beam_worker_memory.growth([
      run(100, 1, 200, 100), run(300, 1, 300, 250),
      run(100, 2, 400, 100), run(1000, 2, 800, 150),
      run(3000, 2, 9999, 9999, status="failed")])
  assert growth == {
      "1": {"100": {"peak_main_rss_mib": 1.0, "peak_worker_rss_mib": 1.0,
                    "wall_s": 1.0},
            "300": {"peak_main_rss_mib": 1.5, "peak_worker_rss_mib": 2.5,
                    "wall_s": 3.0}},
      "2": {"100": {"peak_main_rss_mib": 1.0, "peak_worker_rss_mib": 1.0,
                    "wall_s": 1.0},
            "1000": {"peak_main_rss_mib": 2.0, "peak_worker_rss_mib": 1.5,
                     "wall_s": 10.0}}}


def test_main_measures_runner_and_worker_in_child_processes(tmp_path):
  output = tmp_path / "memory.json"
  assert beam_worker_memory.main(
      ["--sizes", "2000", "--workers", "1", "--shards", "2",
       "--output", str(output)]) == 0
  results = json.loads(output.read_text())
  (run,) = results["runs"]
  assert run["status"] == "ok" and run["size"] == 2000
  # The runner and its one SDK worker are both Python processes with Beam.
  assert run["peak_main_rss_mib"] > 50 and run["peak_worker_rss_mib"] > 50
  assert results["growth"]["1"]["2000"]["peak_worker_rss_mib"] == 1.0
