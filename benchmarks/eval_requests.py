"""The requests a serving benchmark sends: one per eval user of the pipeline.

`eval_users` rebuilds the pipeline's eval split (`data.examples`) and keeps,
per user, the history before their first held-out item and its timestamp,
exactly as the pipeline's Evaluator and serving demo see them;
`request_pool` turns them into TF Serving Predict requests for a signature.
Used by `benchmarks.serving_latency`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from data import contract
from data import examples
from data import features
from serving import client
from tfx_pipeline import config as config_lib


@dataclasses.dataclass(frozen=True)
class EvalUser:
  """What a client sends for one eval user: the Predict inputs."""
  user_id: str
  history: list[str]
  timestamp: int


def eval_users(dataset: contract.Dataset,
               examples_config: config_lib.ExamplesConfig
               ) -> list[EvalUser]:
  """The eval split's users as the pipeline builds it, by user id.

  Each keeps the history before their first held-out item (at most
  `history_length` items, oldest first) and that item's timestamp.
  """
  rows = examples.build_examples(
      dataset, eval_holdout=examples_config.eval_holdout,
      history_length=examples_config.history_length,
      split=examples_config.split,
      temporal_cut_quantile=examples_config.temporal_cut_quantile).eval
  first = {}
  for row in rows:
    first.setdefault(row[features.USER_ID], row)
  return [EvalUser(user_id, list(row[features.HISTORY_ITEM_IDS]),
                   int(row[features.TIMESTAMP]))
          for user_id, row in sorted(first.items())]


def describe(users: Sequence[EvalUser], dataset: str, sent: str) -> dict:
  """What a benchmark's JSON says of its requests; `sent`: what each holds."""
  return {"dataset": dataset, "eval_users": len(users),
          "mean_history_length": round(float(np.mean(
              [len(user.history) for user in users])), 1),
          "source": f"one request per eval user of the pipeline's split: {sent}"}


def request_pool(users: Sequence[EvalUser], model_name: str, signature: str,
                 k: int) -> list:
  """One Predict request per user for `signature` (k: `retrieve_scann`'s)."""
  return [client.retrieval_request(model_name, user.user_id, user.history,
                                   timestamp=user.timestamp, k=k,
                                   signature=signature)
          for user in users]
