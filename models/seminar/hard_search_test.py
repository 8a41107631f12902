"""Tests for SIM's hard search."""

import numpy as np
import tensorflow as tf

from models.seminar import hard_search


def test_keeps_exactly_the_real_items_of_the_candidates_category():
  history_categories = tf.constant([[1, 2, 1, 3, 0], [3, 3, 2, 0, 0]],
                                   tf.int64)
  real = tf.constant([[True, True, True, True, False],
                      [True, True, True, False, False]])
  kept = hard_search.same_category_mask(
      history_categories, tf.constant([1, 3], tf.int64), real)
  np.testing.assert_array_equal(kept.numpy(), [
      [True, False, True, False, False],
      [True, True, False, False, False]])


def test_padding_of_the_candidates_category_is_never_kept():
  # Padding positions carry category 0, as does an item without one.
  kept = hard_search.same_category_mask(
      tf.constant([[2, 0, 0]], tf.int64), tf.constant([0], tf.int64),
      tf.constant([[True, True, False]]))
  np.testing.assert_array_equal(kept.numpy(), [[False, False, False]])
