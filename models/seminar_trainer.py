"""Trainer families `seminar_psu` (pre-training) and `seminar` (fine-tuning).

SEMINAR (`models/seminar.py`) runs as two Trainers: `seminar_psu` trains the
pretraining search unit and writes its encoder and target attention as a
checkpoint under its serving-model dir; `seminar` reads that checkpoint from
`fn_args.base_model`, copies it into the retriever
(`SeminarRetriever.restore_pretrained`), fine-tunes, and exports a ranking
SavedModel (`ctr_trainer.RankingServingModule`: raw features in,
`probability` out, from `serving_default` and `evaluate`).

Inputs built from the Transform output, once per Trainer:

- the item token table of `PairEncoder`: every item's title tokens and
  categories in one token space (`ctr_trainer.catalogue_tokens`);
- query keywords per interaction: the tokens of its search query when it had
  one, else the item's derived query (`num_keywords` of its tokens, chosen
  once per item with a fixed seed, as `seminar.derive_queries` does for data
  without search logs);
- training windows: per user, sequences of up to `history_length + 1`
  consecutive positive train interactions, read from the examples' own
  histories: items from `HISTORY_ITEM_INDICES`, their queries from
  `HISTORY_QUERY_TOKEN_INDICES`, the target's from `QUERY_TOKEN_INDICES`.

The export reads history queries the same way: from the `history_queries`
of a request (`serving_names.RANKER_HISTORY_QUERIES`) or of an eval
example; a history item whose query is "" or missing, and every item of a
`serving_default` request, gets its derived query.

`attention_scoring` picks the export's top-K selection: "exact", or "pq":
the item keys are product-quantised once, at export
(`SeminarRetriever.quantize_item_keys`), and the codes are constants of the
SavedModel; "pq_xla" compiles the lookup-table scoring with XLA, which the
serving runtime must support (TF Serving on CPU:
`--xla_cpu_compilation_enabled=true`). Queries do not change the codes: the
top-K selection runs on item keys only, and a history's queries enter the
exact attention over the selected items and the most recent pair, in every
mode. The score is
calibrated to a click probability by Platt scaling fitted on a sample of the
labelled train examples (positives and ExampleGen's sampled negatives), so
that the Evaluator's log-loss bound applies as it does to the `ranking`
family.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from data import features
from models import ctr_trainer
from models import retrieval_export
from models import seminar
from transforms import preprocessing

PSU_CHECKPOINT = "psu"
PSU_SETTINGS_FILE = "psu_settings.json"
# Hyperparameter beside `SeminarConfig`: an `item_id -> vector` image file
# (see `seminar.load_image_vectors`).
IMAGE_VECTORS_PATH = "image_vectors_path"
# What shapes the PSU's weights or inputs: the fine-tuning Trainer takes
# these from the PSU's export.
INHERITED_HPARAMS = ("embedding_dim", "num_heads", "use_queries", "use_text",
                     "num_keywords", IMAGE_VECTORS_PATH)
CALIBRATION_EXAMPLES = 20_000
_READ_BATCH_SIZE = 4096
_WINDOW_COLUMNS = (features.USER_INDEX, features.ITEM_INDEX,
                   features.HISTORY_ITEM_INDICES,
                   features.HISTORY_LENGTH_FEATURE, features.TIMESTAMP_Z,
                   features.QUERY_TOKEN_INDICES,
                   features.HISTORY_QUERY_TOKEN_INDICES)
_CALIBRATION_COLUMNS = (features.ITEM_INDEX, features.HISTORY_ITEM_INDICES,
                        features.HISTORY_QUERY_TOKEN_INDICES, features.LABEL)


def item_keywords(item_tokens: np.ndarray, num_keywords: int,
                  width: int) -> np.ndarray:
  """Every item's derived query: `num_keywords` of its tokens, fixed per item.

  Args:
    item_tokens: `[num_items, T]` token indices, 0 = padding.
    num_keywords: keywords per query.
    width: columns of the result (>= num_keywords), 0-padded.

  Returns:
    `[num_items, width]` int64.
  """
  keywords = seminar.derive_queries(np.arange(len(item_tokens)), item_tokens,
                                    num_keywords)
  return np.pad(keywords, [(0, 0), (0, width - num_keywords)])


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


def read_train_rows(dataset: tf.data.Dataset, sample_size: int, seed: int = 0
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


def fit_calibration(scores: np.ndarray, labels: np.ndarray,
                    iterations: int = 25) -> tuple[float, float]:
  """Platt scaling: `(a, b)` minimising the log loss of sigmoid(a s + b).

  Newton's method on the two-parameter logistic regression, with a small
  ridge so that separable scores stay finite.
  """
  inputs = np.stack([scores, np.ones_like(scores)], axis=1).astype(np.float64)
  labels = labels.astype(np.float64)
  weights = np.zeros(2)
  for _ in range(iterations):
    probability = 1.0 / (1.0 + np.exp(-inputs @ weights))
    gradient = inputs.T @ (probability - labels) + 1e-3 * weights
    hessian = (inputs.T @ (inputs * (probability * (1 - probability))[:, None])
               + 1e-3 * np.eye(2))
    weights -= np.linalg.solve(hessian, gradient)
  return float(weights[0]), float(weights[1])


class SeminarScorer(tf.Module):
  """Transformed features -> the logit that the user picks the example's item.

  Args:
    retriever: the trained retriever; with `ScoringMode.PQ`, after
      `quantize_item_keys()`.
    keywords_of_items: `[num_items, K]` derived queries, for history items
      without one in `HISTORY_QUERY_TOKEN_INDICES`.
    mode: exact or PQ-approximate top-K selection.
    calibration: Platt `(a, b)`: the logit is `a * score + b`.
  """

  def __init__(self, retriever: seminar.SeminarRetriever,
               keywords_of_items: np.ndarray,
               mode: seminar.ScoringMode = seminar.ScoringMode.EXACT,
               calibration: tuple[float, float] = (1.0, 0.0)):
    super().__init__()
    self.retriever = retriever
    self.keywords_of_items = tf.constant(keywords_of_items, tf.int64)
    self.mode = seminar.ScoringMode(mode)
    self.calibration = calibration

  @property
  def variables(self):
    return self.retriever.variables

  def scores(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch]` uncalibrated scores of `ITEM_INDEX` after the history."""
    history = transformed[features.HISTORY_ITEM_INDICES]
    query_tokens = tf.reshape(
        transformed[features.HISTORY_QUERY_TOKEN_INDICES],
        [tf.shape(history)[0], tf.shape(history)[1], features.QUERY_LENGTH])
    keywords = keywords_with_queries(
        tf.gather(self.keywords_of_items, history), query_tokens)
    candidates = tf.reshape(transformed[features.ITEM_INDEX], [-1, 1])
    return self.retriever.score_selected(history, keywords, candidates,
                                         self.mode)[:, 0]

  def __call__(self, transformed: Mapping[str, tf.Tensor]) -> tf.Tensor:
    slope, intercept = self.calibration
    return slope * self.scores(transformed) + intercept


def calibrate(scorer: SeminarScorer, sample: Mapping[str, np.ndarray],
              batch_size: int = 512) -> tuple[float, float]:
  """Fits `scorer`'s Platt calibration on labelled transformed examples.

  Raises:
    ValueError: if the sample has only one label (ExampleGen wrote no
      negatives).
  """
  labels = sample[features.LABEL]
  if labels.min(initial=1.0) > 0.5 or labels.max(initial=0.0) < 0.5:
    raise ValueError("the train split needs positives and ExampleGen's CTR "
                     "negatives (ctr_negatives > 0) to calibrate SEMINAR")
  score = tf.function(scorer.scores)
  scores = np.concatenate([
      score({name: tf.constant(values[start:start + batch_size])
             for name, values in sample.items()}).numpy()
      for start in range(0, len(labels), batch_size)])
  return fit_calibration(scores, labels)


def save_psu(pretrainer: seminar.SeminarPretrainer,
             settings: Mapping[str, object], export_dir: str) -> None:
  """Writes the PSU's encoder and target attention, and what built them."""
  tf.io.gfile.makedirs(export_dir)
  tf.train.Checkpoint(encoder=pretrainer.encoder,
                      attention=pretrainer.attention).write(
                          os.path.join(export_dir, PSU_CHECKPOINT))
  with tf.io.gfile.GFile(os.path.join(export_dir, PSU_SETTINGS_FILE),
                         "w") as out:
    json.dump(dict(settings), out)


def read_psu_settings(export_dir: str) -> dict:
  with tf.io.gfile.GFile(os.path.join(export_dir, PSU_SETTINGS_FILE)) as file:
    return json.load(file)


def restore_psu(export_dir: str, pretrainer: seminar.SeminarPretrainer,
                retriever: seminar.SeminarRetriever) -> None:
  """Loads `save_psu`'s weights into `pretrainer`, then into `retriever`."""
  status = tf.train.Checkpoint(
      encoder=pretrainer.encoder, attention=pretrainer.attention).read(
          os.path.join(export_dir, PSU_CHECKPOINT))
  # The checkpoint restores the PSU's variables as restore_pretrained
  # creates them, before it copies them.
  retriever.restore_pretrained(pretrainer)
  status.assert_existing_objects_matched()


def inherit_psu_settings(hparams: Mapping[str, object],
                         settings: Mapping[str, object]) -> dict:
  """`hparams` completed with the PSU's `INHERITED_HPARAMS`.

  Raises:
    ValueError: if `hparams` sets one of them to another value.
  """
  for name, value in settings.items():
    if name in hparams and hparams[name] != value:
      raise ValueError(
          f"SEMINAR hyperparameter {name}={hparams[name]!r} differs from the "
          f"PSU's {value!r}; set it for both (--pretrain-hparam)")
  return {**hparams, **settings}


class _Inputs:
  """What both SEMINAR Trainers read from the Transform output."""

  def __init__(self, fn_args, tft_output, input_dataset: Callable,
               config: seminar.SeminarConfig, image_vectors_path: str):
    self.catalogue = retrieval_export.train_split_catalogue(fn_args, tft_output)
    num_title_tokens = preprocessing.vocabulary_size(
        tft_output, features.TITLE_TOKEN_VOCAB)
    self.item_tokens = ctr_trainer.catalogue_tokens(self.catalogue,
                                                        num_title_tokens)
    # Category index c > 0 sits at c + num_title_tokens - 1.
    self.num_tokens = num_title_tokens + preprocessing.vocabulary_size(
        tft_output, features.CATEGORY_VOCAB) - 1
    self.keywords_of_items = item_keywords(
        self.item_tokens, config.num_keywords,
        max(config.num_keywords, features.QUERY_LENGTH))
    self.image_vectors = (
        seminar.load_image_vectors(image_vectors_path,
                                   list(self.catalogue.item_ids))
        if image_vectors_path else None)
    positives, self.calibration_sample = read_train_rows(
        input_dataset(fn_args, fn_args.train_files, tft_output,
                      _READ_BATCH_SIZE, shuffle=False), CALIBRATION_EXAMPLES)
    self.windows = training_windows(positives, self.keywords_of_items)
    logging.info("SEMINAR: %d items, %d tokens, %d training windows",
                 len(self.item_tokens), self.num_tokens,
                 len(self.windows["items"]))

  def build(self, config: seminar.SeminarConfig):
    return seminar.build_seminar(self.item_tokens, self.num_tokens, config,
                                 self.image_vectors)

  def batches(self, batch_size: int) -> tf.data.Dataset:
    """Shuffled windows, trailing padding trimmed per batch."""

    def trim(batch):
      length = tf.reduce_max(tf.reduce_sum(
          tf.cast(batch["items"] != seminar.PADDING_INDEX, tf.int32), axis=1))
      return {name: values[:, :length] for name, values in batch.items()}

    return (tf.data.Dataset.from_tensor_slices(self.windows)
            .shuffle(len(self.windows["items"]), seed=0)
            .batch(batch_size).map(trim))


def train_seminar_psu(fn_args, tft_output, hparams: Mapping[str, object],
                      input_dataset: Callable) -> None:
  """Pre-trains SEMINAR's PSU; writes it for the `seminar` Trainer.

  Args:
    fn_args: the Trainer's FnArgs.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`.
    input_dataset: `models.trainer.input_dataset`.
  """
  config, image_vectors_path = ctr_trainer.config_and_path(
      hparams, seminar.SeminarConfig, IMAGE_VECTORS_PATH)
  inputs = _Inputs(fn_args, tft_output, input_dataset, config,
                   image_vectors_path)
  pretrainer, _ = inputs.build(config)
  pretrainer.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  pretrainer.fit(inputs.batches(config.batch_size), epochs=config.epochs,
                 verbose=2)
  settings = {name: getattr(config, name) for name in INHERITED_HPARAMS
              if name != IMAGE_VECTORS_PATH}
  save_psu(pretrainer, {**settings, IMAGE_VECTORS_PATH: image_vectors_path},
           fn_args.serving_model_dir)


def train_seminar(fn_args, tft_output, hparams: Mapping[str, object],
                  input_dataset: Callable) -> None:
  """Fine-tunes SEMINAR from the PSU (if pre-trained) and exports a ranker.

  Args:
    fn_args: the Trainer's FnArgs; `fn_args.base_model` is the
      `seminar_psu` export when the pipeline ran the pre-training Trainer,
      else the retriever trains from scratch.
    tft_output: the Transform output.
    hparams: `SeminarConfig` overrides, plus `image_vectors_path`; with a
      PSU, the `INHERITED_HPARAMS` default to the PSU's.
    input_dataset: `models.trainer.input_dataset`.

  Raises:
    ValueError: if the train split has no sampled negatives to calibrate on.
  """
  if fn_args.base_model:
    hparams = inherit_psu_settings(hparams,
                                   read_psu_settings(fn_args.base_model))
  config, image_vectors_path = ctr_trainer.config_and_path(
      hparams, seminar.SeminarConfig, IMAGE_VECTORS_PATH)
  inputs = _Inputs(fn_args, tft_output, input_dataset, config,
                   image_vectors_path)
  pretrainer, retriever = inputs.build(config)
  if fn_args.base_model:
    restore_psu(fn_args.base_model, pretrainer, retriever)
    logging.info("Restored the PSU from %s", fn_args.base_model)
  retriever.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
  retriever.fit(inputs.batches(config.batch_size), epochs=config.epochs,
                verbose=2)
  mode = seminar.ScoringMode(config.attention_scoring)
  if mode.quantized:
    retriever.quantize_item_keys()
  scorer = SeminarScorer(retriever, inputs.keywords_of_items, mode)
  scorer.calibration = calibrate(scorer, inputs.calibration_sample)
  logging.info("Platt calibration (a, b) = %s", scorer.calibration)
  ctr_trainer.RankingServingModule(
      tft_output.transform_features_layer(), tft_output.raw_feature_spec(),
      scorer).save(fn_args.serving_model_dir)
