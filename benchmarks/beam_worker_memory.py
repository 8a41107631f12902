"""Whether the Beam DirectRunner holds memory in proportion to the data.

ExampleGen's peak RSS grows 1.6-1.7x from 1M to 10M interactions
(`benchmarks.scaling`), although its DoFns hold one chunk of the file, one
user's events and the catalogue. This benchmark separates the runner's share
from the DoFns': it runs a pipeline of ExampleGen's shape whose every DoFn
holds constant state, on `size` synthetic events, with the DirectRunner in
multi-processing mode, and records the peak resident memory of the runner
process and of its largest SDK worker:

    python -m benchmarks.beam_worker_memory --sizes 1000000 3000000 \\
        --workers 1 2

The shape (ExampleGen's before its reader packed each user's events of a
chunk into one value): workers generate the events (as ExampleGen's reader
does, a few shards of the log each), group them by user one value per
event, build one sorted sequence per user, and then write one record per
event with a side input computed from all the sequences (as ExampleGen's
global counts are). A user's sequence has `events_per_user` events whatever
the size, and the side input is one integer, so anything that grows with `size` is held by the runner or its data
plane, not by the DoFns. Each size runs in a child process of its own
(`benchmarks.child_process.run_child`), and the growth of each peak is given
against the smallest size measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time
import zlib

from benchmarks import child_process
from benchmarks import common
from benchmarks import pipeline_steps

MODULE = "benchmarks.beam_worker_memory"


def synthetic_events(shard: int, events_per_shard: int,
                     events_per_user: int):
  """Yields `(user, (timestamp, item))` events, one shard's worth.

  Args:
    shard: which shard; shards hold disjoint users.
    events_per_shard: events in the shard.
    events_per_user: events of each user (the last user may have fewer).
  """
  first_event = shard * events_per_shard
  for event in range(first_event, first_event + events_per_shard):
    user = f"user_{event // events_per_user}"
    item = f"item_{zlib.crc32(str(event).encode()) % 50_000}"
    yield user, (event, item)


def user_sequence(user: str, events) -> tuple[str, list]:
  return user, sorted(events)


def sequence_rows(sequence: tuple[str, list], total_events: int):
  """One small record per event, as ExampleGen's rows step writes."""
  user, events = sequence
  for position, (timestamp, item) in enumerate(events):
    yield f"{user},{item},{timestamp},{position},{total_events}"


def check_count(count: int, expected: int) -> None:
  if count != expected:
    raise AssertionError(f"wrote {count} records, expected {expected}")


def build(pipeline, size: int, shards: int, events_per_user: int) -> None:
  """Adds the ExampleGen-shaped steps for `size` events to `pipeline`."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  if size % shards:
    raise ValueError(f"size {size} is not a multiple of {shards} shards")
  sequences = (
      pipeline
      | "Shards" >> beam.Create(range(shards))
      | "Reshard" >> beam.Reshuffle()
      | "Read" >> beam.FlatMap(synthetic_events, size // shards,
                               events_per_user)
      | "GroupByUser" >> beam.GroupByKey()
      | "UserSequence" >> beam.MapTuple(user_sequence))
  total_events = beam.pvalue.AsSingleton(
      sequences
      | "Lengths" >> beam.Map(lambda sequence: len(sequence[1]))
      | "Total" >> beam.CombineGlobally(sum))
  _ = (sequences
       | "Rows" >> beam.FlatMap(sequence_rows, total_events)
       | "CountRows" >> beam.combiners.Count.Globally()
       | "Check" >> beam.Map(check_count, size))


def run_here(size: int, workers: int, shards: int,
             events_per_user: int) -> None:
  """Runs the pipeline in this process (the child) on `workers` workers."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  options = beam.options.pipeline_options.PipelineOptions(
      ["--runner=DirectRunner", *pipeline_steps.beam_worker_args(workers)])
  with beam.Pipeline(options=options) as pipeline:
    build(pipeline, size, shards, events_per_user)


def growth(runs: list[dict]) -> dict:
  """Each peak against the same worker count's smallest size, by size."""
  ratios = {}
  for run in runs:
    if run["status"] != "ok":
      continue
    smallest = min((other for other in runs
                    if other["workers"] == run["workers"]
                    and other["status"] == "ok"),
                   key=lambda other: other["size"])
    ratios.setdefault(str(run["workers"]), {})[str(run["size"])] = {
        key: round(run[key] / smallest[key], 2)
        for key in ("peak_main_rss_mib", "peak_worker_rss_mib", "wall_s")}
  return ratios


def format_table(results: dict) -> str:
  rows = []
  for run in results["runs"]:
    ratio = results["growth"].get(str(run["workers"]), {}).get(
        str(run["size"]), {})
    rows.append([
        f"{run['size']:,}", run["workers"], run["status"],
        f"{run['wall_s']:.1f}", f"{run['cpu_s']:.1f}",
        f"{run['peak_main_rss_mib']:,.0f}",
        f"{run['peak_worker_rss_mib']:,.0f}",
        f"{ratio.get('peak_main_rss_mib', '-')}x",
        f"{ratio.get('peak_worker_rss_mib', '-')}x"])
  return common.aligned_table(
      ["events", "workers", "status", "wall s", "CPU s", "runner MiB",
       "largest worker MiB", "runner vs smallest", "worker vs smallest"],
      rows)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", type=int, nargs="+",
                      default=[1_000_000, 3_000_000],
                      help="events per run (default: %(default)s)")
  parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                      help="DirectRunner workers (default: %(default)s)")
  parser.add_argument("--shards", type=int, default=20,
                      help="read shards; must divide every size "
                      "(default: %(default)s)")
  parser.add_argument("--events-per-user", type=int, default=40,
                      help="constant whatever the size (default: "
                      "%(default)s)")
  parser.add_argument("--max-rss-gib", type=float, default=12.0)
  parser.add_argument("--timeout-s", type=float, default=3600)
  parser.add_argument("--output", default=str(common.RESULTS_DIR /
                                              "beam_worker_memory.json"))
  parser.add_argument("--run-size", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.run_size:
    run_here(args.run_size, *args.workers, args.shards, args.events_per_user)
    return 0

  started = time.time()
  machine = common.machine()
  runs = []
  with tempfile.TemporaryDirectory(prefix="vrec_beam_memory_") as logs:
    for workers in args.workers:
      for size in sorted(args.sizes):
        common.log(f"{size:,} events, {workers} worker(s)")
        child = child_process.run_child(
            [sys.executable, "-m", MODULE, "--run-size", str(size),
             "--workers", str(workers), "--shards", str(args.shards),
             "--events-per-user", str(args.events_per_user)],
            pathlib.Path(logs) / f"{size}_{workers}.log",
            args.max_rss_gib * 2**30, args.timeout_s)
        run = {"size": size, "workers": workers,
               **{key: value for key, value in vars(child).items()
                  if key != "output_tail"}}
        if child.status != "ok":
          run["output_tail"] = child.output_tail[-1500:]
        runs.append(run)
        common.log(f"  {child.status}: {child.wall_s} s, runner "
                   f"{child.peak_main_rss_mib:,.0f} MiB, largest worker "
                   f"{child.peak_worker_rss_mib:,.0f} MiB")
  results = {"command": common.command(MODULE, argv), "machine": machine,
             "load_average_end": [round(load, 2) for load in os.getloadavg()],
             "wall_s": round(time.time() - started, 1),
             "shards": args.shards, "events_per_user": args.events_per_user,
             "runs": runs, "growth": growth(runs)}
  common.write_results(args.output, results)
  print(format_table(results), flush=True)
  return 0 if all(run["status"] == "ok" for run in runs) else 1


if __name__ == "__main__":
  # Through the imported module, so that the SDK workers unpickle the DoFns
  # by reference to it, with its imports, rather than as `__main__`'s.
  from benchmarks import beam_worker_memory  # pylint: disable=g-import-not-at-top
  sys.exit(beam_worker_memory.main())
