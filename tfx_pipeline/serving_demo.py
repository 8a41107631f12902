"""Serves the pushed models locally and asks them for a few users' top items.

This is the last step of `python -m tfx_pipeline run`: it starts the project's
gRPC server (TF Serving's protocol) on the serving directory, sends real
Predict requests for held-out users through the `tensorflow-serving-api`
client, prints their top items with titles, and stops the server. The
serving directory and the dataset may be in object storage.
"""

from __future__ import annotations

from data import contract
from data import examples
from data import features
from data import storage
from models import serving_names
from serving import client
from serving import server
from tfx_pipeline import config as config_lib

_SHOWN_HISTORY = 3


def _title(titles: dict[str, str], item_id: str) -> str:
  return titles.get(item_id) or f"item {item_id}"


def has_pushed_model(config: config_lib.PipelineConfig) -> bool:
  """Whether a version was pushed; the push directory may be a URI."""
  return storage.isdir(config.push_dir) and any(
      name.isdigit() for name in storage.listdir(config.push_dir))


def recommend_for_eval_users(config: config_lib.PipelineConfig,
                             num_users: int = 3, k: int = 10) -> str:
  """Returns a printable report of the served model's top-k for eval users.

  The users are the first `num_users` (by id) of the eval split; each request
  carries the user's train history and the eval timestamp, as a client
  would, and the report marks the held-out item when it is recommended.
  """
  dataset = contract.load_dataset(config.dataset_dir)
  eval_rows = sorted(
      examples.build_examples(
          dataset, eval_holdout=config.examples.eval_holdout,
          history_length=config.examples.history_length,
          split=config.examples.split,
          temporal_cut_quantile=config.examples.temporal_cut_quantile).eval,
      key=lambda row: row[features.USER_ID])[:num_users]
  titles = {} if dataset.items is None else dict(
      zip(dataset.items["item_id"], dataset.items["title"]))

  handle = server.serve(server.ServerConfig(model_base_path=config.serving_dir,
                                            port=0))
  lines = [f"Serving {config.push_dir} on {handle.address} "
           "(TF Serving gRPC protocol, retrieve_scann signature)"]
  try:
    version = client.wait_until_available(handle.address, config.model_name)
    lines[0] += f", version {version}"
    for row in eval_rows:
      history = row[features.HISTORY_ITEM_IDS]
      held_out = row[features.ITEM_ID]
      result = client.recommend(
          handle.address, config.model_name, row[features.USER_ID],
          history=history, timestamp=row[features.TIMESTAMP], k=k,
          signature=serving_names.RETRIEVE_SCANN)
      recent = ", ".join(_title(titles, i) for i in history[-_SHOWN_HISTORY:])
      lines += ["", f"user {row[features.USER_ID]}: {len(history)} items "
                f"in history, latest: {recent or '-'}",
                f"  held-out next item: {_title(titles, held_out)}"]
      for rank, (item_id, score) in enumerate(
          zip(result.item_ids, result.scores), start=1):
        marker = "  <- held-out item" if item_id == held_out else ""
        lines.append(f"  {rank:2d}. {_title(titles, item_id)} "
                     f"({score:.3f}){marker}")
  finally:
    handle.stop()
  lines.append("\nServer stopped.")
  return "\n".join(lines)
