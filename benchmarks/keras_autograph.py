"""Trainer time with Keras 2 exempt from AutoGraph, against it converted.

`transforms.legacy_keras` exempts Keras 2's own code (`tf_keras`) from
AutoGraph, as TensorFlow exempts `keras`. This benchmark measures what that
buys: it runs `benchmarks.trainer_only` on one workspace twice, each time in
a fresh process, once as the project runs (exempt) and once with the
exemption taken back, which is TensorFlow 2.16's own behaviour for `tf_keras`
and the baseline. It prints each family and seed's Trainer seconds (whole
`run_fn`: epochs, validation and export), its first epoch's seconds (where a
`tf.function` is traced) and the metrics of both runs, which must agree:
the exemption changes how the graph is built, not what it computes.

    python -m benchmarks.keras_autograph --workspace /tmp/ws --family two_tower \
        --output benchmarks/results/keras_autograph_movielens-100k.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks import common

EXEMPT = "exempt"
CONVERTED = "converted"
_METRICS = ("recall_at_10", "recall_at_50", "ndcg_at_10")


def take_back_the_exemption() -> None:
  """Lets AutoGraph convert `tf_keras` again, as TensorFlow 2.16 does."""
  from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  from transforms import legacy_keras  # pylint: disable=g-import-not-at-top
  config.CONVERSION_RULES = tuple(
      rule for rule in config.CONVERSION_RULES
      if not legacy_keras.exempts_keras_2(rule))


def _child(mode: str, trainer_only_argv: list[str]) -> int:
  import transforms  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  if mode == CONVERTED:
    take_back_the_exemption()
  from benchmarks import trainer_only  # pylint: disable=g-import-not-at-top
  return trainer_only.main(trainer_only_argv)


def compare(runs: dict[str, list[dict]]) -> list[dict]:
  """One row per family and seed: both modes' seconds, ratio, metrics."""
  rows = []
  for exempt, converted in zip(runs[EXEMPT], runs[CONVERTED]):
    row = {"family": exempt["family"], "hparams": exempt["hparams"],
           "seed": exempt["seed"]}
    for mode, run in ((EXEMPT, exempt), (CONVERTED, converted)):
      row[mode] = {
          "trainer_seconds": run["trainer_seconds"],
          "first_epoch_seconds": run["learning_curve"][0]["seconds"],
          "epochs_trained": run["epochs_trained"],
          "metrics": {name: run["metrics"][name] for name in _METRICS}}
    row["exempt_over_converted"] = round(
        exempt["trainer_seconds"] / converted["trainer_seconds"], 3)
    row["same_metrics"] = all(
        round(exempt["metrics"][name], 4) == round(converted["metrics"][name], 4)
        for name in _METRICS)
    rows.append(row)
  return rows


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workspace", required=True,
                      help="a `vrec run` workspace; its latest run is used")
  parser.add_argument("--family", action="append", required=True,
                      metavar="FAMILY[:HPARAMS_JSON]",
                      help="as benchmarks.trainer_only's --family")
  parser.add_argument("--seed", type=int, nargs="+", default=[0])
  parser.add_argument("--output", required=True, help="JSON path")
  return parser


def main(argv=None) -> int:
  args = _parser().parse_args(argv)
  command = common.command("benchmarks.keras_autograph", argv)
  machine_at_start = common.machine()
  runs = {}
  with tempfile.TemporaryDirectory() as scratch:
    for mode in (CONVERTED, EXEMPT):
      output = os.path.join(scratch, f"{mode}.json")
      trainer_only_argv = ["--workspace", args.workspace, "--seed",
                           *map(str, args.seed), "--output", output]
      for family in args.family:
        trainer_only_argv += ["--family", family]
      common.log(f"trainer_only with tf_keras {mode}")
      subprocess.run([sys.executable, "-m", "benchmarks.keras_autograph",
                      "--child", mode, *trainer_only_argv], check=True)
      with open(output) as written:
        runs[mode] = json.load(written)["runs"]
  rows = compare(runs)
  print(common.aligned_table(
      ["family", "seed", "converted s", "exempt s", "exempt / converted",
       "first epoch converted s", "first epoch exempt s", "same metrics",
       *(f"{name} exempt" for name in _METRICS)],
      [[row["family"], row["seed"],
        f"{row[CONVERTED]['trainer_seconds']:.1f}",
        f"{row[EXEMPT]['trainer_seconds']:.1f}",
        f"{row['exempt_over_converted']:.3f}",
        f"{row[CONVERTED]['first_epoch_seconds']:.1f}",
        f"{row[EXEMPT]['first_epoch_seconds']:.1f}",
        "yes" if row["same_metrics"] else "NO",
        *(row[EXEMPT]["metrics"][name] for name in _METRICS)]
       for row in rows]))
  print("Baseline of the ratio: the same Trainer with tf_keras converted by "
        "AutoGraph (TensorFlow 2.16's default). Both runs train the same "
        "seeds; 'same metrics' compares them to 4 decimals.")
  common.write_results(args.output, {
      "command": command, "machine": machine_at_start,
      "workspace": args.workspace, "rows": rows,
      "load_average_end": [round(load, 2) for load in os.getloadavg()]})
  return 0


if __name__ == "__main__":
  if len(sys.argv) > 2 and sys.argv[1] == "--child":
    sys.exit(_child(sys.argv[2], sys.argv[3:]))
  sys.exit(main())
