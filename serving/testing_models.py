"""SavedModels with the product's serving signatures, for the serving tests.

`RetrievalTestModel` serves what a pushed retrieval model serves
(`serving_default` = `retrieve_top10`, `query_embedding`) over fixed item and
user embeddings, plus a ranker's scoring under other signature names
(`RANK_SIGNATURE`, `RANK_QUERIES_SIGNATURE`), so that one version exercises
the retrieval and the ranking paths of the server and the client.
`HistoryTestModel` adds the history to the query, for the tests of the
history store. `MultiVectorQueryModel` is the `query_embedding` of a
multi-interest model
(K vectors per user). `GatedTestModel` holds each request until the test
lets it go. The serving tests use the tiny 24-item instances below; `benchmarks/serving_latency.py` times the pipeline's pushed model.

To run the serving tests against a real TF Serving, export the tiny model as
version 1 of "tiny_retrieval":

    python -m serving.testing_models DIR
    tensorflow_model_server --model_name=tiny_retrieval \\
        --model_base_path=DIR/tiny_retrieval
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from data import features
from models import serving_names
from serving import scann_index

# Items `serving_default` returns, as the product's `retrieve_top10`.
TOP_K = serving_names.RETRIEVE_TOP_KS[0]
QUERY_INPUT_SPECS = (
    tf.TensorSpec([None], tf.string, name=features.USER_ID),
    tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
    tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP))

# The tiny model the serving tests talk to.
MODEL_NAME = "tiny_retrieval"
ITEM_IDS = np.array([f"item_{i}" for i in range(24)])
_RNG = np.random.default_rng(7)
ITEM_EMBEDDINGS = _RNG.normal(size=(len(ITEM_IDS), 4)).astype(np.float32)
USER_EMBEDDINGS = _RNG.normal(size=(8, 4)).astype(np.float32)
# The second vector of each user of the tiny multi-vector model.
SECOND_USER_EMBEDDINGS = np.random.default_rng(8).normal(
    size=USER_EMBEDDINGS.shape).astype(np.float32)
# The ranker's logit: user . item, plus this per history query.
QUERY_LOGIT = 0.5
# Not the product's ranker names: `serving_default` is the retrieval here.
RANK_SIGNATURE = "rank"
RANK_QUERIES_SIGNATURE = "rank_history_queries"
# How often a request of `GatedTestModel` looks whether it may go on.
_GATE_POLL_MICROSECONDS = 50_000


class RetrievalTestModel(tf.Module):
  """A two-tower model's serving interface over fixed embeddings.

  The query is the user's row of `user_embeddings` (user ids hashed onto the
  rows). Items score by dot product with the query; the ranker's
  probability is the sigmoid of that score plus `QUERY_LOGIT` per history
  query.
  """

  def __init__(self, item_ids: np.ndarray, item_embeddings: np.ndarray,
               user_embeddings: np.ndarray):
    super().__init__()
    self.item_ids = tf.constant(item_ids)
    self.item_embeddings = tf.Variable(item_embeddings)
    self.user_embeddings = tf.Variable(user_embeddings)
    self.item_rows = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            self.item_ids, tf.range(len(item_ids), dtype=tf.int64)),
        default_value=-1)

  def _query(self, user_id, history_item_ids, timestamp):
    users = tf.strings.to_hash_bucket_fast(user_id,
                                           self.user_embeddings.shape[0])
    query = tf.gather(self.user_embeddings, users)
    # Zero weight, but the signature really consumes the timestamp.
    return query + 0.0 * tf.cast(timestamp, tf.float32)[:, tf.newaxis]

  def _top_k(self, user_id, history_item_ids, timestamp):
    """The `TOP_K` best items of each row, its history left out."""
    scores = tf.matmul(self._query(user_id, history_item_ids, timestamp),
                       self.item_embeddings, transpose_b=True)
    rows = self.item_rows.lookup(history_item_ids)
    batch = tf.broadcast_to(
        tf.range(tf.shape(rows, out_type=tf.int64)[0])[:, tf.newaxis],
        tf.shape(rows, out_type=tf.int64))
    seen = tf.boolean_mask(tf.stack([batch, rows], axis=-1), rows >= 0)
    scores = tf.tensor_scatter_nd_update(
        scores, seen, tf.fill(tf.shape(seen)[:1], -np.inf))
    top_scores, top = tf.math.top_k(scores, TOP_K)
    return {serving_names.ITEM_IDS: tf.gather(self.item_ids, top),
            serving_names.SCORES: top_scores}

  def _probability(self, user_id, history_item_ids, timestamp, item_id,
                   query_count):
    items = tf.gather(self.item_embeddings, self.item_rows.lookup(item_id))
    logits = tf.reduce_sum(
        self._query(user_id, history_item_ids, timestamp) * items, axis=1)
    return {serving_names.RANKER_PROBABILITY: tf.sigmoid(
        logits + QUERY_LOGIT * query_count)}

  def signatures(self) -> dict:
    """Signature name -> concrete function, for `tf.saved_model.save`."""
    query_embedding = tf.function(
        lambda *query: {serving_names.EMBEDDING: self._query(*query)},
        input_signature=QUERY_INPUT_SPECS)
    retrieve = tf.function(self._top_k, input_signature=QUERY_INPUT_SPECS)
    ranker_specs = QUERY_INPUT_SPECS + (
        tf.TensorSpec([None], tf.string, name=features.ITEM_ID),)
    rank = tf.function(
        lambda *request: self._probability(*request, query_count=0.0),
        input_signature=ranker_specs)

    @tf.function(input_signature=ranker_specs + (tf.TensorSpec(
        [None, None], tf.string, name=features.HISTORY_QUERIES),))
    def rank_history_queries(user_id, history_item_ids, timestamp, item_id,
                             history_queries):
      query_count = tf.reduce_sum(tf.cast(
          tf.not_equal(history_queries, ""), tf.float32), axis=1)
      return self._probability(user_id, history_item_ids, timestamp, item_id,
                               query_count)

    retrieve_top_k = retrieve.get_concrete_function()
    return {serving_names.DEFAULT: retrieve_top_k,
            serving_names.retrieve_top(TOP_K): retrieve_top_k,
            serving_names.QUERY_EMBEDDING:
                query_embedding.get_concrete_function(),
            RANK_SIGNATURE: rank.get_concrete_function(),
            RANK_QUERIES_SIGNATURE:
                rank_history_queries.get_concrete_function()}

  def save(self, directory: str) -> None:
    tf.saved_model.save(self, directory, signatures=self.signatures())


class HistoryTestModel(RetrievalTestModel):
  """The tiny `RetrievalTestModel` whose query also reads the history: the
  user's row plus the sum of the history items' embeddings (unknown ids and
  "" padding add nothing), so a test sees which history the tower got."""

  def _query(self, user_id, history_item_ids, timestamp):
    rows = self.item_rows.lookup(history_item_ids)
    known = tf.cast(rows >= 0, tf.float32)[..., tf.newaxis]
    history = tf.reduce_sum(
        tf.gather(self.item_embeddings, tf.maximum(rows, 0)) * known, axis=1)
    return super()._query(user_id, history_item_ids, timestamp) + history


def history_query(user_id: str, history: list[str]) -> np.ndarray:
  """What `HistoryTestModel`'s query tower answers for one user."""
  row = int(tf.strings.to_hash_bucket_fast([user_id],
                                           len(USER_EMBEDDINGS))[0])
  rows = [list(ITEM_IDS).index(item_id) for item_id in history]
  return USER_EMBEDDINGS[row] + ITEM_EMBEDDINGS[rows].sum(axis=0)


def _pause() -> tf.Tensor:
  """Sleeps `_GATE_POLL_MICROSECONDS` in the graph, which has no sleep op
  but a dataset that sleeps before each element."""
  sleeping = tf.raw_ops.SleepDataset(
      input_dataset=tf.data.experimental.to_variant(tf.data.Dataset.range(1)),
      sleep_microseconds=_GATE_POLL_MICROSECONDS, output_types=[tf.int64],
      output_shapes=[tf.TensorShape([])])
  return tf.data.experimental.from_variant(
      sleeping, tf.TensorSpec([], tf.int64)).reduce(
          tf.constant(0, tf.int64), lambda pauses, _: pauses + 1)


class GatedTestModel(RetrievalTestModel):
  """The tiny `RetrievalTestModel` whose requests wait at a gate.

  A request first writes an empty file at `entered_path`, then waits until
  a file exists at `released_path`, looking for it every 50 ms: it stays in
  flight for exactly as long as the test wants. Both paths are on the
  serving machine.
  """

  def __init__(self, entered_path: str, released_path: str):
    super().__init__(ITEM_IDS, ITEM_EMBEDDINGS, USER_EMBEDDINGS)
    # Variables, not constants, so that graph optimisation cannot look for
    # the file before a request runs.
    self.entered_path = tf.Variable(entered_path)
    self.released_path = tf.Variable(released_path)

  def _query(self, user_id, history_item_ids, timestamp):
    with tf.control_dependencies([tf.io.write_file(self.entered_path, "")]):
      (pauses,) = tf.while_loop(
          lambda _: tf.equal(
              tf.size(tf.io.matching_files(self.released_path)), 0),
          lambda pauses: [pauses + _pause()], [tf.constant(0, tf.int64)])
    with tf.control_dependencies([pauses]):
      return super()._query(user_id, history_item_ids, timestamp)


class MultiVectorQueryModel(tf.Module):
  """The `query_embedding` of a multi-interest model: `[batch, K, dim]`.

  Each user is its row of `user_embeddings` (`[users, K, dim]`, user ids
  hashed onto the rows).
  """

  def __init__(self, user_embeddings: np.ndarray):
    super().__init__()
    self.user_embeddings = tf.Variable(user_embeddings)

  @tf.function(input_signature=QUERY_INPUT_SPECS)
  def query_embedding(self, user_id, history_item_ids, timestamp):
    del history_item_ids, timestamp  # Users are embedded by id alone.
    users = tf.strings.to_hash_bucket_fast(user_id,
                                           self.user_embeddings.shape[0])
    return {serving_names.EMBEDDING: tf.gather(self.user_embeddings, users)}

  def save(self, directory: str) -> None:
    tf.saved_model.save(self, directory, signatures={
        serving_names.QUERY_EMBEDDING:
            self.query_embedding.get_concrete_function()})


def export_tiny_model(directory: str) -> None:
  """Writes the tiny retrieval model (history ignored) to `directory`."""
  RetrievalTestModel(ITEM_IDS, ITEM_EMBEDDINGS, USER_EMBEDDINGS).save(
      directory)


def export_tiny_history_model(directory: str) -> None:
  """Writes the tiny `HistoryTestModel` with its items' ScaNN index."""
  HistoryTestModel(ITEM_IDS, ITEM_EMBEDDINGS, USER_EMBEDDINGS).save(directory)
  write_tiny_scann_index(directory)


def export_gated_model(directory: str, entered_path: str,
                       released_path: str) -> None:
  """Writes the tiny retrieval model, its requests held until a file exists
  at `released_path` (see `GatedTestModel`)."""
  GatedTestModel(entered_path, released_path).save(directory)


def write_tiny_scann_index(directory: str) -> None:
  """Adds the ScaNN index of the 24 tiny items to a model version."""
  scann_index.ScannIndex.build(ITEM_EMBEDDINGS, list(ITEM_IDS)).write(
      directory)


def export_tiny_multi_vector_model(directory: str) -> None:
  """Writes a two-vector query tower with the tiny items' ScaNN index."""
  MultiVectorQueryModel(np.stack([USER_EMBEDDINGS, SECOND_USER_EMBEDDINGS],
                                 axis=1)).save(directory)
  write_tiny_scann_index(directory)


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m serving.testing_models",
      description=f"Exports the serving tests' model as version 1 of "
                  f"{MODEL_NAME}, for a real TF Serving.")
  parser.add_argument("base_path",
                      help=f"writes BASE_PATH/{MODEL_NAME}/1/")
  flags = parser.parse_args(argv)
  export_tiny_model(os.path.join(flags.base_path, MODEL_NAME, "1"))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
