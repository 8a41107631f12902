"""Tests of reading positive events and building split user sequences."""

import pandas as pd

from data import user_sequences


def test_sequence_keeps_file_order_of_same_second_events_and_drops_repeats():
  # (timestamp, row_number, item, query, item_type), shuffled as a sharded
  # reader may deliver them.
  events = [(5, 7, "c", "", "item"), (5, 2, "b", "q", "video"),
            (1, 9, "a", "", "item"), (5, 4, "b", "later copy", "item")]
  sequence = user_sequences.user_sequence("u", events)
  assert sequence.item_ids == ["a", "b", "c"]
  assert sequence.queries == ["", "q", ""]
  assert sequence.item_types == ["item", "video", "item"]
  split = user_sequences.split_sequence(sequence, user_sequences.SplitRule())
  assert (split.n_train, split.n_eval) == (2, 1)
  assert split.seen_item_ids() == ["a", "b"]


def test_positive_rows_start_at_the_threshold():
  interactions = pd.DataFrame({"label": [0.0, 0.49, 0.5, 1.0]})
  assert user_sequences.positive_rows(interactions).index.tolist() == [2, 3]


def test_packed_events_by_user_are_the_positive_events_by_user():
  interactions = pd.DataFrame({
      "user_id": ["ü", "v", "ü", "v", "ü", "v\x00"],
      "item_id": ["item-ü", "x", "a", "y", "b", "z"],
      "timestamp": [1_700_000_000, 3, -5, 3, 7, 1],
      "label": [1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
      "query": ["", "q", "q\x00", "", "", ""],
      # Equal strings, each its own object, as a contract frame holds them.
      "item_type": ["video"] + ["".join(["it", "em"]) for _ in range(5)],
  }, index=pd.RangeIndex(10, 16))
  assert interactions["item_type"][12] is not interactions["item_type"][14]
  positives = user_sequences.positive_event_columns(interactions)
  assert len(positives) == 5
  # Equal strings are one object.
  assert positives["item_type"].iloc[2] is positives["item_type"].iloc[3]
  assert positives["query"].tolist() == ["", "q", "q\x00", "", ""]
  packed = list(user_sequences.packed_events_by_user(positives))
  # Users in order of first appearance.
  assert [user_id for user_id, _ in packed] == ["ü", "v", "v\x00"]
  assert {user_id: user_sequences.unpack_events(events)
          for user_id, events in packed} == {
              "ü": [(1_700_000_000, 10, "item-ü", "", "video"),
                    (-5, 12, "a", "q\x00", "item"),
                    (7, 14, "b", "", "item")],
              "v": [(3, 11, "x", "q", "item")],
              "v\x00": [(1, 15, "z", "", "item")]}
  assert list(user_sequences.packed_events_by_user(positives[:0])) == []


def test_packed_sequences_round_trip():
  events = [(1_700_000_000, 12, "item-ü", "", "video"),
            (-5, 3, "a", "q\x00", "item"), (7, 4, "b", "", "item")]
  sequence = user_sequences.split_sequence(
      user_sequences.user_sequence("ü", events), user_sequences.SplitRule())
  assert (sequence.n_train, sequence.n_eval) == (2, 1)
  assert user_sequences.unpack_sequence(
      user_sequences.pack_sequence(sequence)) == sequence
