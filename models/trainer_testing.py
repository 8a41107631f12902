"""In-memory stand-ins for what TFX hands a Trainer, for its unit tests.

`fn_args` serves transformed rows held as numpy arrays through the FnArgs'
data accessor, by split name ("train", "eval") in place of file patterns,
and records which splits were read. `TransformOutput` answers the
vocabulary questions of `transforms.preprocessing`. `ctr_rows` writes
transformed rows the way ExampleGen and Transform lay out a ranking family's
split: each positive followed by its sampled negatives (same user, time and
history), users' rows in shuffled file order. `served_auc` scores such rows
with an exported ranker, sent as raw ids.
"""

from __future__ import annotations

import types
from typing import Callable, Mapping, Sequence

import numpy as np
from sklearn import metrics
import tensorflow as tf

from data import features
from models import families
from models import serving_names

TRAIN = "train"
EVAL = "eval"


class InMemoryAccessor:
  """The FnArgs' data accessor over in-memory splits.

  Args:
    splits: split name -> transformed rows (equally long arrays by name).

  Attributes:
    read: the split names read, in order.
  """

  def __init__(self, splits: Mapping[str, Mapping[str, np.ndarray]]):
    self.splits = splits
    self.read: list[str] = []

  def tf_dataset_factory(self, file_pattern, options, schema
                         ) -> tf.data.Dataset:
    del schema
    self.read.append(file_pattern)
    rows = self.splits[file_pattern]
    dataset = tf.data.Dataset.from_tensor_slices(dict(rows))
    if options.shuffle:
      dataset = dataset.shuffle(len(next(iter(rows.values()))),
                                seed=options.shuffle_seed)
    return dataset.batch(options.batch_size)


def fn_args(splits: Mapping[str, Mapping[str, np.ndarray]], model_dir: str,
            base_model: str = "", seed: int = 0) -> types.SimpleNamespace:
  """A Trainer's FnArgs over in-memory `splits` ("train" and "eval")."""
  return types.SimpleNamespace(
      train_files=TRAIN, eval_files=EVAL,
      data_accessor=InMemoryAccessor(splits),
      custom_config={families.SEED_KEY: seed}, base_model=base_model,
      serving_model_dir=f"{model_dir}/serving",
      model_run_dir=f"{model_dir}/model_run")


class TransformOutput:
  """The parts of `TFTransformOutput` the Trainers read.

  Args:
    vocabularies: vocabulary name -> its tokens, in index order.
    transform_layer: raw features -> transformed ones, for the export.
    raw_feature_spec: the raw features the export parses.
  """

  def __init__(self, vocabularies: Mapping[str, list[str]],
               transform_layer: Callable, raw_feature_spec: Mapping):
    self.vocabularies = vocabularies
    self.transform_layer = transform_layer
    self._raw_feature_spec = raw_feature_spec
    self.transformed_metadata = types.SimpleNamespace(schema=None)

  def vocabulary_by_name(self, name: str) -> list[bytes]:
    return [token.encode() for token in self.vocabularies[name]]

  def vocabulary_size_by_name(self, name: str) -> int:
    return len(self.vocabularies[name])

  def transform_features_layer(self) -> Callable:
    return self.transform_layer

  def raw_feature_spec(self) -> Mapping:
    return dict(self._raw_feature_spec)


def vocabularies(num_users: int, num_items: int, num_tokens: int
                 ) -> dict[str, list[str]]:
  """Vocabularies whose token i + 1 is index i + 1's own number."""
  return {features.USER_VOCAB: [str(u) for u in range(1, num_users + 1)],
          features.ITEM_VOCAB: [str(i) for i in range(1, num_items + 1)],
          features.TITLE_TOKEN_VOCAB: [str(t) for t in range(1, num_tokens)],
          features.CATEGORY_VOCAB: ["c1", "c2"]}


def ctr_rows(num_users: int, positives_per_user: int, negatives: int,
             num_items: int, seed: int) -> tuple[dict[str, np.ndarray],
                                                 dict[str, np.ndarray]]:
  """Train and eval rows of a ranking family, every transformed feature.

  Each user (index 1..`num_users`) picks distinct random items, one per
  day; the first `positives_per_user` are train positives, the next one is
  the eval positive. Each positive is followed by `negatives` label-0 rows
  with its user, time and history and an item the user never picked. Item
  i's title is token i modulo 7 (plus one) and its category 1 or 2, by
  parity. Rows are shuffled by user, keeping each user's rows in order.

  Returns:
    `(train, eval)`.
  """
  rng = np.random.default_rng(seed)
  splits = {TRAIN: [], EVAL: []}
  for user in rng.permutation(np.arange(1, num_users + 1)):
    picked = rng.choice(np.arange(1, num_items + 1), positives_per_user + 1,
                        replace=False)
    others = np.setdiff1d(np.arange(1, num_items + 1), picked)
    for position, item in enumerate(picked):
      split = TRAIN if position < positives_per_user else EVAL
      for label, candidate in [(1.0, item)] + [
          (0.0, other) for other in rng.choice(others, negatives)]:
        splits[split].append((user, candidate, picked[:position], position,
                              label))
  return tuple(_transformed(splits[name]) for name in (TRAIN, EVAL))


def positive_rows(sequences: Mapping[int, Sequence[int]]
                  ) -> dict[str, np.ndarray]:
  """A retrieval family's train rows, every transformed feature: each
  user's items, in order, each after the ones before it (day = position);
  users in the order given."""
  return _transformed([(user, item, items[:position], position, 1.0)
                       for user, items in sequences.items()
                       for position, item in enumerate(items)])


def _transformed(rows: list) -> dict[str, np.ndarray]:
  count = len(rows)
  history = np.zeros((count, features.HISTORY_LENGTH), np.int64)
  for row, (_, _, items, _, _) in enumerate(rows):
    history[row, :len(items)] = items
  items = np.array([row[1] for row in rows], np.int64)
  titles = np.zeros((count, features.TITLE_LENGTH), np.int64)
  titles[:, 0] = items % 7 + 1
  categories = np.zeros((count, features.CATEGORY_LENGTH), np.int64)
  categories[:, 0] = items % 2 + 1
  days = np.array([row[3] for row in rows], np.int64)
  return {
      features.USER_INDEX: np.array([row[0] for row in rows], np.int64),
      features.ITEM_INDEX: items,
      features.HISTORY_ITEM_INDICES: history,
      features.HISTORY_LENGTH_FEATURE: np.sum(history > 0, axis=1),
      features.LABEL: np.array([row[4] for row in rows], np.float32),
      features.TIMESTAMP_Z: (days / 10.0).astype(np.float32),
      features.HOUR_OF_DAY: np.zeros(count, np.int64),
      features.DAY_OF_WEEK: days % 7,
      features.TITLE_TOKEN_INDICES: titles,
      features.CATEGORY_INDICES: categories,
      features.QUERY_TOKEN_INDICES: np.zeros((count, features.QUERY_LENGTH),
                                             np.int64),
      features.HISTORY_QUERY_TOKEN_INDICES: np.zeros(
          (count, features.HISTORY_LENGTH * features.QUERY_LENGTH), np.int64),
  }


def _raw_ids(indices: np.ndarray) -> np.ndarray:
  """Index i as the raw id "i", padding as ""."""
  return np.where(indices > 0, indices.astype(str), "")


def served_auc(serving_model_dir: str, rows: Mapping[str, np.ndarray]
               ) -> float:
  """AUC of an exported ranker's `serving_default` on transformed `rows`.

  The export's Transform stand-in must read raw id "i" as index i.
  """
  served = tf.saved_model.load(serving_model_dir).signatures[
      serving_names.DEFAULT](
          user_id=tf.constant(_raw_ids(rows[features.USER_INDEX])),
          item_id=tf.constant(_raw_ids(rows[features.ITEM_INDEX])),
          history_item_ids=tf.constant(_raw_ids(
              rows[features.HISTORY_ITEM_INDICES])),
          timestamp=tf.zeros([len(rows[features.LABEL])], tf.int64))
  return float(metrics.roc_auc_score(
      rows[features.LABEL], served[serving_names.RANKER_PROBABILITY].numpy()))


def losses_before_and_after(model, batch: Mapping[str, tf.Tensor],
                            steps: int = 10, learning_rate: float = 0.05
                            ) -> tuple[float, float]:
  """`model.compute_loss(batch)` before and after `steps` Adam steps on it.

  Eager steps: Keras' first compiled fit costs a minute on these machines.
  """
  optimizer = tf.keras.optimizers.Adam(learning_rate)
  before = float(model.compute_loss(batch, training=True))
  for _ in range(steps):
    with tf.GradientTape() as tape:
      loss = model.compute_loss(batch, training=True)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                  model.trainable_variables))
  return before, float(model.compute_loss(batch, training=True))
