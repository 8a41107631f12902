"""Tests for the before/after comparison of the data steps."""

from benchmarks import example_storage


def _run(step, size, output_bytes, seconds):
  return {"size": size, "workers": 2, "step": step, "status": "ok",
          "output_bytes": output_bytes, "seconds": seconds,
          "cpu_s": 2 * seconds, "peak_rss_mib": 1000.0}


def _runs(*runs):
  return {(run["size"], run["workers"], run["step"]): run for run in runs}


def _at_goal_size(*bytes_and_seconds):
  """The three steps' runs at 10M, each step's `(output bytes, seconds)`."""
  return _runs(*(_run(step, example_storage.GOAL_SIZE, output_bytes, seconds)
                 for step, (output_bytes, seconds) in zip(
                     example_storage.STEPS, bytes_and_seconds)))


def _before_at_goal_size():
  return _at_goal_size((700, 480.0), (1, 210.0), (720, 650.0))


def test_ratios_totals_and_goals_at_10m():
  size = example_storage.GOAL_SIZE
  before = _before_at_goal_size()
  after = _at_goal_size((70, 240.0), (1, 60.0), (100, 400.0))
  comparison = example_storage.compare(before, after)
  example_gen = next(row for row in comparison["steps"]
                     if row["step"] == "ExampleGen")
  assert example_gen["output_bytes_ratio"] == 0.1
  assert example_gen["seconds_ratio"] == 0.5
  (total,) = comparison["totals"]
  assert (total["seconds_before"], total["seconds_after"]) == (1340.0, 700.0)
  assert total["time_goal_met"]
  assert comparison["example_gen_bytes_goal_met"] == {str(size): True}


def test_goals_not_met_are_said():
  size = example_storage.GOAL_SIZE
  before = _before_at_goal_size()
  after = _at_goal_size((71, 400.0), (1, 100.0), (100, 300.0))
  comparison = example_storage.compare(before, after)
  assert not comparison["totals"][0]["time_goal_met"]
  assert comparison["example_gen_bytes_goal_met"] == {str(size): False}
  assert "ExampleGen" in example_storage.report(comparison)
