"""The ScaNN-layer model: the query tower with a TFRS ScaNN layer over items.

For a TF Serving built with the ScaNN ops (stock TF Serving cannot load
them; the pushed model stays plain TF, with the index in its
`assets.extra/`). Loading it needs `import scann` first, which registers
those ops. A user embedded as K vectors gets the merge of the K vectors'
lists (`serving.multi_vector`). `tfx_pipeline.index_builder` writes it
beside the indexed model.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import serving_names
from serving import multi_vector
from serving import scann_index

# The ScaNN-layer model's ops live in the "Scann" namespace, which
# tf.saved_model.save refuses unless allowed explicitly.
SCANN_OP_NAMESPACE = "Scann"

_QUERY_INPUT_SPECS = (
    tf.TensorSpec([None], tf.string, name=features.USER_ID),
    tf.TensorSpec([None, None], tf.string, name=features.HISTORY_ITEM_IDS),
    tf.TensorSpec([None], tf.int64, name=features.TIMESTAMP),
)


class ScannRetrievalModule(tf.Module):
  """Raw query features -> the query tower -> a ScaNN layer's top k.

  Args:
    model: the loaded retrieval SavedModel; supplies `query_embedding`.
    scann_layer: an indexed `tfrs.layers.factorized_top_k.ScaNN`; its k is
      the neighbours fetched per query vector, at least `k`.
    k: items returned per user.
    merge_rule: how the lists of a multi-vector user's vectors merge, one of
      `serving.multi_vector.MERGE_RULES`.
  """

  def __init__(self, model: Any,
               scann_layer: tfrs.layers.factorized_top_k.ScaNN, k: int,
               merge_rule: str = multi_vector.MAX):
    super().__init__()
    self.model = model
    self.scann_layer = scann_layer
    self._k = k
    self._merge_rule = merge_rule

  @tf.function(input_signature=_QUERY_INPUT_SPECS)
  def retrieve(self, user_id: tf.Tensor, history_item_ids: tf.Tensor,
               timestamp: tf.Tensor) -> dict[str, tf.Tensor]:
    """Top-k items of the whole catalogue; history items are not excluded.

    A user embedded as K vectors gets the merge of the K vectors' lists.
    """
    query = self.model.signatures[serving_names.QUERY_EMBEDDING](
        user_id=user_id, history_item_ids=history_item_ids,
        timestamp=timestamp)[serving_names.EMBEDDING]
    if query.shape.rank == 3:
      shape = tf.shape(query)
      scores, item_ids = self.scann_layer(tf.reshape(query, [-1, shape[2]]))
      per_user = tf.stack([shape[0], shape[1], -1])
      item_ids, scores = multi_vector.merge_neighbours(
          tf.reshape(item_ids, per_user), tf.reshape(scores, per_user),
          self._k, self._merge_rule)
      return {serving_names.ITEM_IDS: item_ids, serving_names.SCORES: scores}
    scores, item_ids = self.scann_layer(query)
    return {serving_names.ITEM_IDS: item_ids[:, :self._k], serving_names.SCORES: scores[:, :self._k]}


def export_scann_layer_model(model_dir: str, embeddings: np.ndarray,
                             item_ids: Sequence[str],
                             params: scann_index.ScannParams,
                             export_dir: str) -> None:
  """Saves the query tower with a ScaNN layer over `embeddings`.

  Args:
    model_dir: SavedModel with a `query_embedding` signature.
    embeddings: `[items, dim]` candidate embeddings.
    item_ids: the id of each embedding row.
    params: ScaNN parameters already fitted to the number of items. The layer
      has no knob for `training_sample_size` and the anisotropic threshold;
      it uses ScaNN's defaults for those.
    export_dir: where to save; `serving_default` is the retrieval signature.
  """
  scann_layer = tfrs.layers.factorized_top_k.ScaNN(
      k=min(max(params.default_k, params.neighbors_per_vector), len(item_ids)),
      distance_measure="dot_product",
      num_leaves=params.num_leaves,
      num_leaves_to_search=params.num_leaves_to_search,
      dimensions_per_block=params.dimensions_per_block,
      num_reordering_candidates=params.reorder_k)
  scann_layer.index(tf.constant(embeddings, tf.float32),
                    tf.constant(list(item_ids)))
  module = ScannRetrievalModule(tf.saved_model.load(model_dir), scann_layer,
                                k=min(params.default_k, len(item_ids)),
                                merge_rule=params.merge_rule)
  tf.saved_model.save(
      module, export_dir,
      signatures={serving_names.DEFAULT: module.retrieve.get_concrete_function()},
      options=tf.saved_model.SaveOptions(
          namespace_whitelist=[SCANN_OP_NAMESPACE]))
