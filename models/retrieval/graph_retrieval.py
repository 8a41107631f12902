"""Retrieval models whose towers read a propagated train graph.

LightGCN and GMN embed nodes by light graph convolution over the train
graph (`layers.graph_convolution.GraphEmbeddings`). Both towers of a
training step read one propagation (`compute_loss` runs inside
`propagated()`), and the export serves towers over tables frozen when it is
written (`serving_towers`), so that a request gathers and never propagates.
"""

from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from models.layers import graph_convolution
from models.retrieval import two_tower


class GraphRetrievalModel(two_tower.RetrievalModel):
  """`RetrievalModel` over one graph propagation per step.

  Args:
    embeddings: the graph embeddings both towers read.
    query_tower, candidate_tower, catalogue_features,
    item_sampling_probability, config: `two_tower.RetrievalModel`'s.
  """

  def __init__(self, embeddings: graph_convolution.GraphEmbeddings,
               query_tower: tf.keras.Model, candidate_tower: tf.keras.Model,
               catalogue_features, item_sampling_probability,
               config: two_tower.TwoTowerConfig):
    super().__init__(query_tower, candidate_tower, catalogue_features,
                     item_sampling_probability, config)
    self.embeddings = embeddings

  def compute_loss(self, inputs: Mapping[str, tf.Tensor], training: bool = False):
    with self.embeddings.propagated():
      return super().compute_loss(inputs, training)

  def serving_towers(self) -> tuple[tf.keras.Model, tf.keras.Model]:
    """Query and candidate towers over this model's current tables, frozen:
    what the Trainer exports."""
    raise NotImplementedError
