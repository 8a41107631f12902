"""The one registry of serving names: signatures, their inputs and outputs.

Exports (`models.retrieval.export`, `models.ctr.trainer`), the ScaNN index
builder, the Evaluator config, the gRPC server and the client all read the
names from here, so that a served model and whoever calls it cannot drift
apart. Input names of raw features are the feature names of
`data.features` (`QUERY_RAW_FEATURES`, `CANDIDATE_RAW_FEATURES`). This module
imports nothing, so the client can use it without TensorFlow.
"""

# Signatures of every retrieval export.
DEFAULT = "serving_default"  # = retrieve_top10 for retrieval models
QUERY_EMBEDDING = "query_embedding"
CANDIDATE_EMBEDDING = "candidate_embedding"
RETRIEVE_TOP_KS = (10, 100)
EVALUATE = "evaluate"


def retrieve_top(k: int) -> str:
  """Name of the brute-force top-`k` signature, `k` in `RETRIEVE_TOP_KS`."""
  return f"retrieve_top{k}"


# Added to a retrieval export by the ScaNN index builder: the same request as
# `serving_default`, answered from the approximate index. The CPU retrieval
# server also serves it on models whose index sits in `assets.extra/`.
RETRIEVE_SCANN = "retrieve_scann"
# Optional inputs of `retrieve_scann`, besides the raw query features: how
# many items (a scalar) and, per user, item ids to leave out of the answer.
SCANN_K = "k"
SCANN_EXCLUDE_ITEM_IDS = "exclude_item_ids"

# Optional input of `retrieve_scann` (bool, scalar or [1], default True):
# False lets the answer hold items of the user's history (the request's, or
# the one read from the history store).
FILTER_SEEN = "filter_seen"

# With an online history store (`serving.server --history_store`), a request
# to any signature taking the raw query features may leave out the history
# (and the timestamp, then the server's clock): the server reads each user's
# history from the store, and adds this output, `[batch]` strings saying
# where each row's history came from. A request carrying its own history is
# answered as before, without it.
HISTORY_SOURCE = "history_source"
HISTORY_FROM_STORE = "store"
# A user the store does not know: the query tower on an empty history.
HISTORY_COLD_START = "cold_start"
# The gRPC service beside PredictionService that appends users' new events to
# the store (`serving.stored_histories`). Its one method takes a
# PredictRequest whose inputs are the events, `[batch]` tensors named as the
# data contract's columns (user id, item id, optional timestamp), and
# answers an empty PredictResponse.
USER_EVENTS_SERVICE = "vrec.serving.UserEvents"
APPEND_EVENTS = "AppendEvents"

# Outputs of the embedding signatures.
EMBEDDING = "embedding"
# Outputs of every retrieve signature: `[batch, k]` ids, best first, and their
# scores.
ITEM_IDS = "item_ids"
SCORES = "scores"
# Outputs of `evaluate` (retrieval): the target's rank among all catalogue
# items for the model and for a most-popular scorer, ties against the target.
TARGET_RANK = "target_rank"
POPULARITY_TARGET_RANK = "popularity_target_rank"
# Input of `evaluate`: serialized tf.Examples.
EXAMPLES = "examples"

# The CTR ranker export (families `ranking` and `seminar`): the click
# probability of `serving_default` and `evaluate`, and the signature that also
# takes `history_queries` (a separate one because a signature's inputs are all
# required, and most clients have no queries).
RANKER_PROBABILITY = "probability"
RANKER_HISTORY_QUERIES = "serving_history_queries"
# COURIER's export: one content embedding per raw item id.
ITEM_EMBEDDING = "item_embedding"
