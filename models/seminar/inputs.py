"""What both SEMINAR Trainers read from the Transform output.

Built once per Trainer (`SeminarInputs`):

- the item token table of `seminar_encoder.PairEncoder`: every item's title
  tokens and categories in one token space (`ctr_trainer.catalogue_tokens`);
- query keywords per interaction: the tokens of its search query when it had
  one, else the item's derived query (`num_keywords` of its tokens, chosen
  once per item with the run's seed, `derived_queries.item_keywords`);
- training windows: per user, sequences of up to `HISTORY_LENGTH + 1`
  consecutive positive train interactions, read from the examples' own
  histories: items from `HISTORY_ITEM_INDICES`, their queries from
  `HISTORY_QUERY_TOKEN_INDICES`, the target's from `QUERY_TOKEN_INDICES`;
- a uniform sample of labelled train examples, for Platt calibration;
- validation rows carved from train (`ctr_validation.hold_out`: each user's
  newest train positive and its negatives), never in the training windows
  or the calibration sample, and each held-out positive's window (its
  history and itself), for early stopping;
- optionally, image vectors from an `item_id -> vector` file
  (`item_vectors.load_item_vectors`).
"""

from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import tensorflow as tf

from data import derived_queries
from data import features
from data import item_vectors
from models import catalogue as catalogue_lib
from models.ctr import trainer as ctr_trainer
from models.ctr import validation as ctr_validation
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu
from models import train_inputs
from models import training
from transforms import preprocessing

# Hyperparameter beside `SeminarConfig`: the image vectors file.
IMAGE_VECTORS_PATH = "image_vectors_path"
CALIBRATION_EXAMPLES = 20_000
_READ_BATCH_SIZE = 4096
_WINDOW_COLUMNS = (features.USER_INDEX, features.ITEM_INDEX,
                   features.HISTORY_ITEM_INDICES,
                   features.HISTORY_LENGTH_FEATURE, features.TIMESTAMP_Z,
                   features.QUERY_TOKEN_INDICES,
                   features.HISTORY_QUERY_TOKEN_INDICES)
_CALIBRATION_COLUMNS = (features.ITEM_INDEX, features.HISTORY_ITEM_INDICES,
                        features.HISTORY_QUERY_TOKEN_INDICES, features.LABEL)


def keywords_with_queries(derived: tf.Tensor,
                          query_tokens: tf.Tensor) -> tf.Tensor:
  """Each interaction's keywords: its query's tokens, else its derived query.

  Args:
    derived: `[..., W]` derived queries of the interactions' items.
    query_tokens: `[..., Q]` their search queries' token indices (Q <= W);
      all 0 = no query.

  Returns:
    `[..., W]`, the query tokens 0-padded to W where there is a query.
  """
  derived = tf.convert_to_tensor(derived)
  query_tokens = tf.cast(query_tokens, derived.dtype)
  padding = tf.zeros(tf.concat([tf.shape(query_tokens)[:-1],
                                [derived.shape[-1] - query_tokens.shape[-1]]],
                               0), derived.dtype)
  has_query = tf.reduce_any(query_tokens != 0, axis=-1, keepdims=True)
  return tf.where(has_query, tf.concat([query_tokens, padding], -1), derived)


def training_windows(rows: Mapping[str, np.ndarray], keywords_of_items:
                     np.ndarray) -> dict[str, np.ndarray]:
  """SEMINAR's training sequences, from positive train examples.

  An example holds its user's history before it (oldest first, capped) and
  its target: a window of consecutive interactions. Per user, the newest
  example and every `cap`-th one before it are kept (`cap` = the longest
  history), so windows overlap by one item and every train item but the
  first is a target once. Examples are ordered by history length, then time.

  Args:
    rows: transformed positive train examples, the `_WINDOW_COLUMNS`.
    keywords_of_items: `[num_items, K]` derived queries (K >=
      `QUERY_LENGTH`); an interaction with a search query (the example's
      history queries and its own) uses its tokens instead
      (`keywords_with_queries`).

  Returns:
    `items` `[W, HISTORY_LENGTH + 1]` (0-padded) and `keywords`
    `[W, HISTORY_LENGTH + 1, K]`; windows of one item are dropped.
  """
  users = rows[features.USER_INDEX]
  history_lengths = rows[features.HISTORY_LENGTH_FEATURE]
  order = np.lexsort((rows[features.TIMESTAMP_Z], history_lengths, users))
  cap = max(1, int(history_lengths.max(initial=0)))
  sorted_users = users[order]
  newest = np.flatnonzero(np.append(sorted_users[1:] != sorted_users[:-1],
                                    True))
  positions = np.arange(len(order))
  # How many of its user's examples are newer than each sorted example.
  from_newest = newest[np.searchsorted(newest, positions)] - positions
  kept = order[(from_newest % cap == 0) & (history_lengths[order] > 0)]

  history_queries = rows[features.HISTORY_QUERY_TOKEN_INDICES].reshape(
      len(users), features.HISTORY_LENGTH, features.QUERY_LENGTH)
  length = features.HISTORY_LENGTH + 1
  items = np.zeros((len(kept), length), np.int64)
  queries = np.zeros((len(kept), length, features.QUERY_LENGTH), np.int64)
  for window, row in enumerate(kept):
    history_length = history_lengths[row]
    items[window, :history_length] = (
        rows[features.HISTORY_ITEM_INDICES][row, :history_length])
    items[window, history_length] = rows[features.ITEM_INDEX][row]
    queries[window, :history_length] = history_queries[row, :history_length]
    queries[window, history_length] = rows[features.QUERY_TOKEN_INDICES][row]
  keywords = keywords_with_queries(keywords_of_items[items], queries)
  return {"items": items, "keywords": keywords.numpy()}


def read_train_rows(dataset: tf.data.Dataset, sample_size: int, seed: int
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """One pass over the train split: its positives, and a uniform sample.

  Args:
    dataset: batches of transformed train examples.
    sample_size: labelled examples to sample (reservoir sampling), for
      calibration.
    seed: seeds the sample.

  Returns:
    The `_WINDOW_COLUMNS` of every positive, and the `_CALIBRATION_COLUMNS`
    of at most `sample_size` examples of any label.
  """
  rng = np.random.default_rng(seed)
  positives = {name: [] for name in _WINDOW_COLUMNS}
  sample = None
  seen = 0
  for batch in dataset:
    batch = {name: tensor.numpy() for name, tensor in batch.items()}
    is_positive = batch[features.LABEL] > 0.5
    for name in _WINDOW_COLUMNS:
      positives[name].append(batch[name][is_positive])
    count = len(batch[features.LABEL])
    if sample is None:
      sample = {name: np.zeros((sample_size,) + batch[name].shape[1:],
                               batch[name].dtype)
                for name in _CALIBRATION_COLUMNS}
    # Algorithm R: example t replaces a random slot with probability
    # sample_size / (t + 1); the first sample_size fill the reservoir.
    indices = np.arange(seen, seen + count)
    slots = np.where(indices < sample_size, indices,
                     rng.integers(0, indices + 1))
    keep = slots < sample_size
    for name in _CALIBRATION_COLUMNS:
      sample[name][slots[keep]] = batch[name][keep]
    seen += count
  positives = {name: np.concatenate(parts) for name, parts in positives.items()}
  sample = {name: values[:min(seen, sample_size)]
            for name, values in (sample or {}).items()}
  return positives, sample


class SeminarInputs:
  """What both SEMINAR Trainers read from the Transform output.

  Args:
    fn_args: the Trainer's FnArgs; its run seed derives the queries, draws
      the calibration sample and shuffles the windows.
    tft_output: the Transform output.
    config: hyperparameters.
    image_vectors_path: an `item_id -> vector` file, or "".
  """

  def __init__(self, fn_args, tft_output,
               config: seminar.SeminarConfig, image_vectors_path: str):
    self.seed = train_inputs.run_seed(fn_args)
    self.image_vectors_path = image_vectors_path
    self.catalogue = catalogue_lib.train_split_catalogue(fn_args, tft_output)
    num_title_tokens = preprocessing.vocabulary_size(
        tft_output, features.TITLE_TOKEN_VOCAB)
    self.item_tokens = ctr_trainer.catalogue_tokens(self.catalogue,
                                                    num_title_tokens)
    # Category index c > 0 sits at c + num_title_tokens - 1.
    self.num_tokens = num_title_tokens + preprocessing.vocabulary_size(
        tft_output, features.CATEGORY_VOCAB) - 1
    self.keywords_of_items = derived_queries.item_keywords(
        self.item_tokens, config.num_keywords,
        max(config.num_keywords, features.QUERY_LENGTH), self.seed)
    self.image_vectors = (
        item_vectors.load_item_vectors(image_vectors_path,
                                       list(self.catalogue.item_ids))[0]
        if image_vectors_path else None)
    self.held_out = ctr_validation.hold_out(fn_args, tft_output)
    positives, self.calibration_sample = read_train_rows(
        train_inputs.input_dataset_without(fn_args, tft_output,
                                           self.held_out.mask,
                                           _READ_BATCH_SIZE),
        CALIBRATION_EXAMPLES, self.seed)
    self.windows = training_windows(positives, self.keywords_of_items)
    self.validation_windows = training_windows(self.held_out.positives,
                                               self.keywords_of_items)
    logging.info("SEMINAR: %d items, %d tokens, %d training windows",
                 len(self.item_tokens), self.num_tokens,
                 len(self.windows["items"]))

  def build(self, config: seminar.SeminarConfig
            ) -> tuple[seminar_psu.SeminarPretrainer, seminar.SeminarRetriever]:
    return seminar_psu.build_seminar(self.item_tokens, self.num_tokens, config,
                                     self.image_vectors)

  def batches(self, batch_size: int) -> tf.data.Dataset:
    """Windows shuffled with the run's seed, trailing padding trimmed per
    batch."""
    return training.shuffled_batches(self.windows, batch_size, self.seed,
                                     drop_remainder=False,
                                     map_batch=_trim_padding)

  def validation_batches(self, batch_size: int) -> tf.data.Dataset:
    """The held-out positives' windows in a fixed order, trimmed likewise."""
    return (tf.data.Dataset.from_tensor_slices(self.validation_windows)
            .batch(batch_size).map(_trim_padding))


def _trim_padding(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Drops the window positions that are padding in every row of `batch`."""
  length = tf.reduce_max(tf.reduce_sum(
      tf.cast(batch["items"] != features.PADDING_INDEX, tf.int32), axis=1))
  return {name: values[:, :length] for name, values in batch.items()}
