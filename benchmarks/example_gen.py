"""InteractionExampleGen's Beam job against the in-memory `build_examples`.

For each dataset: the wall time of `data.examples.build_examples` (contract read
included, one process, the whole log in memory) and of the Beam job of
`tfx_pipeline.components.interaction_example_beam` on the given runner
(default: the DirectRunner in memory), the ratio of the two, and whether the
two wrote exactly the same examples (`example_gen_testing`, multisets).

  python -m benchmarks.example_gen --datasets movielens-100k amazon-grocery

Writes `benchmarks/results/example_gen.json` and prints a table.
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import tempfile
import time
from typing import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from benchmarks import common
from data import contract
from data import examples
from data import user_sequences
from tfx_pipeline.components import example_gen_testing
from tfx_pipeline.components import interaction_example_beam

DATASETS = ("movielens-100k", "amazon-grocery")
DEFAULT_BEAM_ARGS = "--runner=DirectRunner --direct_running_mode=in_memory"


def run_dataset(name: str, args: argparse.Namespace) -> dict:
  workdir = pathlib.Path(tempfile.mkdtemp(prefix="example_gen_"))
  dataset_dir = contract.write_dataset(common.load_interactions(name, args),
                                       workdir / "data")
  options = {"split": args.split, "ctr_negatives": args.ctr_negatives}

  common.log(f"{name}: build_examples")
  start = time.monotonic()
  stored = examples.build_examples(contract.load_dataset(dataset_dir), **options)
  in_memory_s = time.monotonic() - start

  common.log(f"{name}: Beam job ({args.beam_args})")
  job = interaction_example_beam.ExampleGenJob(
      dataset_dir=str(dataset_dir),
      split_dirs={split: str(workdir / "out" / split)
                  for split in (user_sequences.TRAIN, user_sequences.EVAL)},
      summary_path=str(workdir / "out" / "summary.json"), **options)
  start = time.monotonic()
  interaction_example_beam.run(beam.Pipeline(options=PipelineOptions(
      shlex.split(args.beam_args))), job)
  beam_s = time.monotonic() - start

  equal = {
      split: example_gen_testing.written_examples(job.split_dirs[split])
      == example_gen_testing.expected_examples(split_rows)
      for split, split_rows in ((user_sequences.TRAIN, stored.train),
                                (user_sequences.EVAL, stored.eval))}
  return {"train_examples": len(stored.train), "eval_examples": len(stored.eval),
          "build_examples_s": round(in_memory_s, 1), "beam_s": round(beam_s, 1),
          "beam_over_build_examples": round(beam_s / in_memory_s, 2),
          "equal": equal, "peak_rss_mib": round(common.peak_rss_mib(), 1)}


def report(label: str, results: dict) -> str:
  return common.aligned_table(
      ["dataset", "train examples", "eval examples", "build_examples s", "Beam s",
       "Beam / build_examples", "same examples"],
      [[label, results["train_examples"], results["eval_examples"],
        results["build_examples_s"], results["beam_s"],
        results["beam_over_build_examples"], all(results["equal"].values())]])


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, DATASETS, list(DATASETS),
                               multiple=True)
  parser.add_argument("--split", default=user_sequences.LEAVE_LAST_OUT,
                      choices=user_sequences.SPLIT_RULES)
  parser.add_argument("--ctr-negatives", type=int, default=0)
  parser.add_argument("--beam-args", default=DEFAULT_BEAM_ARGS,
                      help="Beam pipeline args of the job, one string")
  parser.add_argument("--output",
                      default=str(common.RESULTS_DIR / "example_gen.json"))
  args = parser.parse_args(argv)
  return common.run_datasets("benchmarks.example_gen", argv, args,
                             run_dataset, report)


if __name__ == "__main__":
  main()
