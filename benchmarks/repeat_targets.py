"""How many held-out targets repeat an item of the user's train history.

The pipeline's evaluation ranks each eval target against every item the user
has not seen, and counts the target itself even when the user saw it before
(`models.catalogue_export`: "a repeat purchase is still a right answer"). On
a log where many users come back to an item, a model that scores seen items
high (an item-item model: the item's co-occurring neighbours are in the
history) gets those targets nearly for free, and a sequence model that never
learnt to repeat gets none of them. This counts that share with the
pipeline's own split (`data.user_sequences`: positives only, exact logging
repeats dropped, the newest positive of each user held out).

    python -m benchmarks.repeat_targets --datasets movielens-100k \\
        amazon-grocery hm-fashion taobao-userbehavior-sample

Writes `benchmarks/results/repeat_targets.json` and prints a table.
"""

from __future__ import annotations

import argparse
from typing import Mapping, Sequence

from benchmarks import common
from data import importers
from data import user_sequences


def repeat_share(interactions) -> dict:
  """The eval targets of the leave-last-out split that are repeats.

  Args:
    interactions: a contract interactions frame, index in file order.

  Returns:
    `users` with an eval target, `repeats` among those targets, `share`.
  """
  rule = user_sequences.SplitRule()
  users = repeats = 0
  for user_id, events in user_sequences.positive_events_by_user(
      interactions).items():
    sequence = user_sequences.split_sequence(
        user_sequences.user_sequence(user_id, events), rule)
    if not sequence.n_eval:
      continue
    users += 1
    target = sequence.item_ids[sequence.n_train]
    repeats += target in set(sequence.item_ids[:sequence.n_train])
  return {"users": users, "repeats": repeats,
          "share": round(repeats / users, 4) if users else None}


def run_dataset(name: str, args: argparse.Namespace) -> Mapping:
  return repeat_share(common.load_interactions(name, args,
                                               args.data_root).interactions)


def report(label: str, result: Mapping) -> str:
  return common.aligned_table(
      ["dataset", "users with a target", "repeat targets", "share"],
      [[label, result["users"], result["repeats"], result["share"]]])


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  common.add_dataset_arguments(parser, sorted(importers.IMPORTERS),
                               ["movielens-100k"], multiple=True)
  parser.add_argument("--data_root", default=None,
                      help="the folder holding the datasets' folders")
  parser.add_argument("--output",
                      default=str(common.RESULTS_DIR / "repeat_targets.json"))
  args = parser.parse_args(argv)
  return common.run_datasets("benchmarks.repeat_targets", argv, args,
                             run_dataset, report)


if __name__ == "__main__":
  main()
