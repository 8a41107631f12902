"""Tests for what Trainers read from their FnArgs."""

import types

import numpy as np
import pytest
import tensorflow as tf
from tfx_bsl.public import tfxio

from data import features
from models import distribution_testing
from models import families
from models import train_inputs
from models import trainer_testing
from models import user_rows
from models.retrieval import two_tower


@pytest.mark.parametrize("custom_config, seed", [
    (None, 0), ({}, 0), ({families.SEED_KEY: 7}, 7), ({families.SEED_KEY: "3"}, 3)])
def test_run_seed_reads_the_custom_config(custom_config, seed):
  fn_args = types.SimpleNamespace(custom_config=custom_config)
  assert train_inputs.run_seed(fn_args) == seed


def test_seeded_config_applies_overrides_and_seeds_tensorflow():
  fn_args = types.SimpleNamespace(custom_config={families.SEED_KEY: 3})
  config = train_inputs.seeded_config(fn_args, {"epochs": 2},
                                      two_tower.TwoTowerConfig)
  first = tf.random.uniform([4]).numpy()
  train_inputs.seeded_config(fn_args, {}, two_tower.TwoTowerConfig)
  assert config.epochs == 2
  assert (tf.random.uniform([4]).numpy() == first).all()


def _user_example(user: int, positions: int, negatives: int) -> dict:
  """A per-user transformed example: `positions` positives with
  `negatives` negatives each, and the example's own row feature."""
  items = [100 * user + position for position in range(positions)]
  negative_items = [1000 * user + index
                    for index in range(positions * negatives)]

  def tokens(values, width):
    return [value % 7 + 1 for value in values for _ in range(width)]

  return {
      features.USER_INDEX: user,
      features.ITEM_INDEX: items[-1],
      features.SEQUENCE_ITEM_INDICES: items,
      features.SEQUENCE_IS_VIDEO: [item % 2 for item in items],
      features.SEQUENCE_TITLE_TOKEN_INDICES: tokens(items,
                                                    features.TITLE_LENGTH),
      features.SEQUENCE_CATEGORY_INDICES: tokens(items,
                                                 features.CATEGORY_LENGTH),
      features.SEQUENCE_QUERY_TOKEN_INDICES: tokens(items,
                                                    features.QUERY_LENGTH),
      features.SEQUENCE_HOUR_OF_DAY: list(range(positions)),
      features.SEQUENCE_DAY_OF_WEEK: [user % 7] * positions,
      features.SEQUENCE_TIMESTAMP_Z: [position / 10
                                      for position in range(positions)],
      features.NEGATIVE_ITEM_INDICES: negative_items,
      features.NEGATIVE_TITLE_TOKEN_INDICES: tokens(negative_items,
                                                    features.TITLE_LENGTH),
      features.NEGATIVE_CATEGORY_INDICES: tokens(negative_items,
                                                 features.CATEGORY_LENGTH),
  }


# Five users, 1 to 5 positions, 0 to 2 negatives per position: 34 rows.
_USERS = [_user_example(user, user, user % 3) for user in range(1, 6)]
_ROW_COUNT = sum(user * (1 + user % 3) for user in range(1, 6))


class _UserExamplesAccessor:
  """The data accessor over in-memory per-user examples, parsed as tfxio
  does: varlen features as `[batch, None]` sparse tensors.

  Attributes:
    options: the read options of each read, in order.
  """

  def __init__(self, examples: list[dict]):
    self.examples = examples
    self.options = []

  def tf_dataset_factory(self, file_pattern, options, schema
                         ) -> tf.data.Dataset:
    del file_pattern, schema
    self.options.append(options)
    columns = {}
    for name, first in self.examples[0].items():
      values = [example[name] for example in self.examples]
      columns[name] = (tf.ragged.constant(
          values, tf.float32 if name == features.SEQUENCE_TIMESTAMP_Z
          else tf.int64) if isinstance(first, list) else
                       tf.constant(values, tf.int64))
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if options.shuffle:
      dataset = dataset.shuffle(len(self.examples), seed=options.shuffle_seed)
    return dataset.batch(options.batch_size).map(
        lambda batch: {name: (values.to_sparse()
                              if isinstance(values, tf.RaggedTensor)
                              else values)
                       for name, values in batch.items()})


def _per_user_inputs(custom_config=None):
  """FnArgs over `_USERS` and a Transform output whose spec has the
  sequence features."""
  fn_args = types.SimpleNamespace(
      train_files="train", data_accessor=_UserExamplesAccessor(_USERS),
      custom_config=custom_config or {families.SEED_KEY: 4})
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None),
      transformed_feature_spec=lambda: {
          name: tf.io.VarLenFeature(tf.int64) for name in _USERS[0]})
  return fn_args, tft_output


def _read_all(dataset: tf.data.Dataset) -> dict[str, np.ndarray]:
  batches = list(dataset.as_numpy_iterator())
  return {name: np.concatenate([batch[name] for batch in batches])
          for name in batches[0]}


def _row_tuples(rows: dict[str, np.ndarray]) -> list[tuple]:
  """Each row's values, all features flattened, in row order."""
  names = sorted(rows)
  return [tuple(np.concatenate([np.ravel(rows[name][row]).astype(np.float64)
                                for name in names]))
          for row in range(len(rows[features.LABEL]))]


@pytest.fixture(name="two_users_per_read")
def _two_users_per_read(monkeypatch):
  # Five users then take three reads, the rows of each spanning batches.
  monkeypatch.setattr(train_inputs, "_USERS_PER_READ", 2)


@pytest.mark.usefixtures("two_users_per_read")
def test_input_dataset_expands_per_user_examples_in_read_order():
  fn_args, tft_output = _per_user_inputs()
  dataset = train_inputs.input_dataset(fn_args, "train", tft_output,
                                       batch_size=4, shuffle=False)
  assert {name: spec.shape.as_list()
          for name, spec in dataset.element_spec.items()} == {
              name: [None, *shape]
              for name, shape in user_rows.ROW_SHAPES.items()}
  rows = _read_all(dataset)

  all_users = next(iter(_UserExamplesAccessor(_USERS).tf_dataset_factory(
      "train", tfxio.TensorFlowDatasetOptions(batch_size=5, shuffle=False),
      None)))
  expected = {name: values.numpy() for name, values in
              user_rows.expand_user_rows(all_users).items()}
  assert rows.keys() == expected.keys()
  for name, values in expected.items():
    np.testing.assert_array_equal(rows[name], values, err_msg=name)
  # User 1's positive and its negative, then user 2's two positives with
  # two negatives each, ...
  np.testing.assert_array_equal(rows[features.ITEM_INDEX][:8],
                                [100, 1000, 200, 2000, 2001, 201, 2002, 2003])
  assert len(rows[features.LABEL]) == _ROW_COUNT
  assert [(options.batch_size, options.shuffle)
          for options in fn_args.data_accessor.options] == [(2, False)]


@pytest.mark.usefixtures("two_users_per_read")
def test_shuffled_input_dataset_mixes_the_same_rows_by_the_seed():
  def shuffled_rows():
    fn_args, tft_output = _per_user_inputs()
    return _row_tuples(_read_all(train_inputs.input_dataset(
        fn_args, "train", tft_output, batch_size=4, shuffle=True)))

  fn_args, tft_output = _per_user_inputs()
  ordered = _row_tuples(_read_all(train_inputs.input_dataset(
      fn_args, "train", tft_output, batch_size=4, shuffle=False)))
  shuffled = shuffled_rows()
  assert shuffled != ordered
  assert sorted(shuffled) == sorted(ordered)
  assert shuffled_rows() == shuffled


def test_input_dataset_caps_histories_at_the_configured_length():
  fn_args, tft_output = _per_user_inputs(
      {families.HISTORY_LENGTH_KEY: 2})
  rows = _read_all(train_inputs.input_dataset(fn_args, "train", tft_output,
                                              batch_size=8, shuffle=False))
  assert rows[features.HISTORY_LENGTH_FEATURE].max() == 2
  assert (rows[features.HISTORY_ITEM_INDICES][:, 2:] == 0).all()


def test_rows_at_picks_expanded_rows_by_their_read_order():
  fn_args, tft_output = _per_user_inputs()
  selected = np.zeros(_ROW_COUNT, bool)
  selected[[1, 5, 33]] = True
  rows = train_inputs.rows_at(fn_args, tft_output, selected)
  # User 1's negative, user 2's second positive, user 5's last negative.
  np.testing.assert_array_equal(rows[features.ITEM_INDEX], [1000, 201, 5009])
  np.testing.assert_array_equal(rows[features.LABEL], [0, 1, 0])


def test_input_dataset_reads_per_row_examples_as_they_are():
  rows = {features.ITEM_INDEX: np.arange(5, dtype=np.int64),
          features.LABEL: np.ones(5, np.float32)}
  fn_args = trainer_testing.fn_args({trainer_testing.TRAIN: rows}, "unused")
  tft_output = types.SimpleNamespace(
      transformed_metadata=types.SimpleNamespace(schema=None),
      transformed_feature_spec=lambda: {
          features.ITEM_INDEX: tf.io.FixedLenFeature([], tf.int64)})
  read = [batch[features.ITEM_INDEX].tolist() for batch in
          train_inputs.input_dataset(fn_args, trainer_testing.TRAIN,
                                     tft_output, batch_size=2,
                                     shuffle=False).as_numpy_iterator()]
  assert read == [[0, 1], [2, 3], [4]]


@pytest.mark.usefixtures("two_users_per_read")
def test_sequence_rows_reads_the_stored_sequences_in_the_expanded_order():
  fn_args, tft_output = _per_user_inputs()
  rows = train_inputs.sequence_rows(fn_args, tft_output)
  # Read as stored: users, not expanded rows, per read.
  assert [(options.batch_size, options.shuffle)
          for options in fn_args.data_accessor.options] == [(2, False)]
  expanded = _read_all(train_inputs.input_dataset(
      fn_args, "train", tft_output, batch_size=8, shuffle=False))
  positive = expanded[features.LABEL] > 0.5
  np.testing.assert_array_equal(rows.users,
                                expanded[features.USER_INDEX][positive])
  np.testing.assert_array_equal(rows.targets,
                                expanded[features.ITEM_INDEX][positive])
  np.testing.assert_array_equal(
      rows.positions, np.concatenate([np.arange(user) for user in range(1, 6)]))
  np.testing.assert_allclose(rows.context[features.TIMESTAMP_Z],
                             expanded[features.TIMESTAMP_Z][positive])


def _numbered_rows(count: int):
  """FnArgs and a Transform output stand-in for `count` positive rows whose
  item index is their place in the read order."""
  rows = {features.ITEM_INDEX: np.arange(count, dtype=np.int64),
          features.LABEL: np.ones(count, np.float32)}
  return (trainer_testing.fn_args({trainer_testing.TRAIN: rows}, "unused"),
          types.SimpleNamespace(
              transformed_metadata=types.SimpleNamespace(schema=None)))


def test_each_input_pipeline_reads_its_own_share_of_the_kept_rows():
  fn_args, tft_output = _numbered_rows(20)
  excluded = np.zeros(20, bool)
  excluded[[3, 10]] = True
  global_batch = 4
  steps = train_inputs.epoch_steps(excluded, global_batch)
  shares = []
  # Two workers of two replicas in all: a replica's batch is 2 rows.
  for context in distribution_testing.input_contexts(2, replicas=2):
    batches = list(train_inputs.sharded_input_without(
        fn_args, tft_output, excluded, global_batch, context).take(
            2 * steps).as_numpy_iterator())
    assert {len(batch[features.ITEM_INDEX]) for batch in batches} == {2}
    # Repeated without end: a pass of 9 rows, less the remainder, and on.
    shares.append(np.concatenate(
        [batch[features.ITEM_INDEX] for batch in batches[:4]]))
  assert steps == 18 // 4
  assert set(shares[0]).isdisjoint(shares[1])
  kept = set(np.flatnonzero(~excluded))
  assert set(shares[0]) | set(shares[1]) <= kept
  assert len(set(shares[0]) | set(shares[1])) == 16


def test_input_pipelines_do_not_pair_up_their_rows():
  # Rows 2j and 2j + 1 are one user's, as in a read order grouped by user.
  fn_args, tft_output = _numbered_rows(64)
  shares = [next(train_inputs.sharded_input_without(
      fn_args, tft_output, np.zeros(64, bool), 64, context).as_numpy_iterator()
                 )[features.ITEM_INDEX]
            for context in distribution_testing.input_contexts(2, replicas=2)]
  # One seed for both would shuffle the shares alike: 32 of 32 pairs.
  same_user = np.sum(shares[0] // 2 == shares[1] // 2)
  assert same_user <= 4
