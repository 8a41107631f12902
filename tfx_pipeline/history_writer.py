"""After a push: every user's latest history, for the online history store.

The pushed retrieval model's query tower reads a user id, the user's
history item ids (oldest first) and the request time; the store keeps each
user's newest positives with their timestamps, as the pipeline's examples
order them (`data.user_sequences`: time order, logging duplicates dropped).
This step writes them as the push's snapshot, `<workspace>/history/
snapshot.jsonl` (`serving.history_journal`), beside the event log the server
appends to, and, given a store, rebuilds the store from the two:

    python -m tfx_pipeline.history_writer --dataset_dir DATA \\
        --history_dir /tmp/ws/history --history_store sqlite:///h.db

`python -m tfx_pipeline run` writes the snapshot after each run that pushed
a model.
"""

from __future__ import annotations

import argparse
from typing import Optional

from data import contract
from data import storage
from data import user_sequences
from serving import history_journal
from serving import history_store
from tfx_pipeline import config as config_lib

HISTORY_DIR_NAME = "history"


def latest_histories(dataset: contract.Dataset,
                     max_items: int = history_store.DEFAULT_MAX_ITEMS,
                     ) -> history_journal.Snapshot:
  """Each user's newest `max_items` positives, as of the log's last event."""
  histories = {}
  for user_id, events in user_sequences.positive_events_by_user(
      dataset.interactions).items():
    sequence = user_sequences.user_sequence(user_id, events)
    histories[str(user_id)] = history_store.UserHistory(
        tuple(str(item_id) for item_id in sequence.item_ids[-max_items:]),
        tuple(sequence.timestamps[-max_items:]))
  return history_journal.Snapshot(
      int(dataset.interactions["timestamp"].max()), histories)


def history_dir(config: config_lib.PipelineConfig) -> str:
  """Where a pipeline's history snapshot goes, beside its pushed models."""
  return storage.join(config.workspace, HISTORY_DIR_NAME)


def write_histories(dataset_dir: str, directory: str,
                    store_url: Optional[str] = None,
                    max_items: int = history_store.DEFAULT_MAX_ITEMS,
                    ) -> history_journal.Snapshot:
  """Writes the snapshot of the dataset's histories into `directory`, then,
  given a store, rebuilds it from the snapshot and the events since."""
  snapshot = latest_histories(contract.load_dataset(dataset_dir), max_items)
  history_journal.write_snapshot(directory, snapshot)
  if store_url is not None:
    history_journal.rebuild_store(store_url, directory, max_items)
  return snapshot


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m tfx_pipeline.history_writer",
      description="Writes every user's latest history as the push's "
                  "snapshot, and rebuilds the online history store from it.")
  parser.add_argument("--dataset_dir", required=True,
                      help="the contract dataset the pushed model was "
                           "trained on")
  parser.add_argument("--history_dir", required=True,
                      help="where the snapshot goes, beside the event log")
  parser.add_argument("--history_store", default=None,
                      help="sqlite:///path or redis://host:port/db to "
                           "rebuild (default: only write the snapshot)")
  parser.add_argument("--max_items", type=int,
                      default=history_store.DEFAULT_MAX_ITEMS,
                      help="newest items kept per user (default: "
                           "%(default)s)")
  flags = parser.parse_args(argv)
  snapshot = write_histories(flags.dataset_dir, flags.history_dir,
                             flags.history_store, flags.max_items)
  print(f"{len(snapshot.histories)} users' histories as of "
        f"{snapshot.as_of} in {history_journal.snapshot_path(flags.history_dir)}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
