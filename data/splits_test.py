"""Tests of the shared data splits."""

import numpy as np
import pandas as pd

from data import splits


def test_leave_one_out_takes_the_last_two_by_time():
  frame = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2],
                        "item_id": [10, 11, 12, 13, 20, 21],
                        "time": [4, 1, 3, 2, 1, 2]})
  train, valid, test = splits.leave_one_out(frame)
  assert test["item_id"].tolist() == [10]
  assert valid["item_id"].tolist() == [12]
  assert train["item_id"].tolist() == [11, 13, 20, 21]


def test_random_holdout_is_seeded_and_keeps_a_train_row():
  frame = pd.DataFrame({"u": [1] * 10 + [2] * 3 + [3], "i": range(14)})
  train, heldout = splits.random_holdout(frame, "u", 0.3, seed=7, users={1, 2, 3})
  again_train, again_heldout = splits.random_holdout(frame, "u", 0.3, seed=7, users={1, 2, 3})
  assert heldout["i"].tolist() == again_heldout["i"].tolist()
  assert heldout.groupby("u").size().to_dict() == {1: 3, 2: 1}
  assert set(train["u"]) == {1, 2, 3}
  assert len(train) + len(heldout) == len(frame)


def test_random_holdout_only_touches_selected_users():
  frame = pd.DataFrame({"u": [1, 1, 2, 2], "i": range(4)})
  _, heldout = splits.random_holdout(frame, "u", 0.5, seed=0, users=[2])
  assert set(heldout["u"]) == {2}


def test_latest_per_user_mask_holds_out_the_newest_row_of_users_with_two():
  users = np.array(["a", "b", "a", "a", "c", "b"])
  times = np.array([5, 1, 9, 9, 3, 2])
  mask = splits.latest_per_user_mask(users, times)
  # a: the later of the two rows at t=9; b: t=2; c has one row and keeps it.
  assert mask.tolist() == [False, False, False, True, False, True]
  assert not splits.latest_per_user_mask(users, times, min_rows=4).any()


def test_every_held_out_row_is_scored_up_to_the_cap():
  users = np.array([3, 3, 5, 7, 7])
  held_out = np.array([False, True, True, False, True])
  scored = splits.scored_validation_mask(held_out, users, max_users=3)
  np.testing.assert_array_equal(scored, held_out)
  assert scored is not held_out


def test_above_the_cap_a_fixed_sample_of_users_is_scored_in_any_order():
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(1_000), 3)
  held_out = np.tile([False, False, True], 1_000)
  scored = splits.scored_validation_mask(held_out, users, max_users=100)
  assert scored.sum() == 100 and not np.any(scored & ~held_out)
  # The same users, read in another order.
  order = rng.permutation(len(users))
  shuffled = splits.scored_validation_mask(held_out[order], users[order],
                                           max_users=100)
  np.testing.assert_array_equal(np.sort(users[order][shuffled]),
                                np.sort(users[scored]))
  # Spread over the users, not the first hundred indices.
  assert users[scored].max() > 500
