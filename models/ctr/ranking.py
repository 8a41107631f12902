"""TFRS CTR ranking model: DIN target attention and DCN-v2 feature crosses.

An item is represented by its id embedding and, optionally, a trainable
projection of a frozen content table (raw content vectors, or item
embeddings pre-trained by COURIER or another objective) and of a frozen
image table (the image embeddings COURIER's image encoder computed once
after pre-training: the model reads stored vectors, never an image). The
user's history
is pooled by DIN attention with the candidate as the query. The user
embedding, the candidate, the pooled interest and their element-wise product
pass through DCN-v2 cross layers (`tfrs.layers.dcn.Cross`, Wang et al. 2021)
and a deep MLP to one logit. The TFRS ranking task trains it with binary
cross-entropy and reports AUC; GAUC (per-user AUC) is computed in evaluation
by `offline_eval.protocols.gauc`, because it needs the user of each example.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import hparams
from models.layers import din_attention
from models.layers import mlp


@dataclasses.dataclass(frozen=True)
class RankingConfig(hparams.HParams):
  """Hyperparameters of the ranking model.

  Attributes:
    embedding_dim: size of the user/item id embeddings and of the content
      projection.
    attention_units: hidden sizes of DIN's activation unit.
    num_cross_layers: stacked DCN-v2 cross layers.
    deep_units: hidden sizes of the MLP after the crosses.
    learning_rate: Adam learning rate.
    epochs: the most passes over the training examples; the pipeline's
      Trainer keeps the epoch with the best validation AUC
      (`models.early_stopping`).
    batch_size: examples per batch.
    early_stopping_patience: the pipeline's Trainer stops after this many
      epochs in a row without a better validation AUC.
  """
  embedding_dim: int = 32
  attention_units: Sequence[int] = (36,)
  num_cross_layers: int = 2
  deep_units: Sequence[int] = (64, 32)
  learning_rate: float = 0.001
  epochs: int = 2
  batch_size: int = 1024
  early_stopping_patience: int = 2


def align_embedding_table(table_item_ids: Sequence[str], table: np.ndarray,
                          item_vocabulary: Sequence[str]) -> np.ndarray:
  """Reorders an `item_id -> embedding` table to the ranking item indices.

  The ranking model's item index i + 1 is `item_vocabulary[i]`; index 0 is
  padding and index `len(item_vocabulary) + 1` the OOV bucket (the layout of
  `transforms.preprocessing`). Vocabulary items missing from the table, and
  ids unknown to the vocabulary (which Transform maps to the OOV index), read
  the OOV row: the zero vector, "no content known".

  Args:
    table_item_ids: raw id of each table row.
    table: `[rows, dim]` embeddings.
    item_vocabulary: the ranking model's item vocabulary.

  Returns:
    `[len(item_vocabulary) + 2, dim]` float32.
  """
  row_of_id = {str(item_id): row for row, item_id in enumerate(table_item_ids)
               if item_id}
  aligned = np.zeros((len(item_vocabulary) + 2, table.shape[1]), np.float32)
  for index, item_id in enumerate(item_vocabulary, start=1):
    row = row_of_id.get(str(item_id))
    if row is not None:
      aligned[index] = table[row]
  return aligned


class RankingModel(tfrs.Model):
  """DIN + DCN-v2 CTR model.

  Inputs: `features.USER_INDEX` `[batch]`, `features.ITEM_INDEX` `[batch]`
  (the candidate), `features.HISTORY_ITEM_INDICES` `[batch, length]`
  (0 = padding) and, for training, `features.LABEL` `[batch]` in {0, 1}.

  Args:
    num_users: user indices, padding and OOV included.
    num_items: item indices, padding and OOV included.
    config: hyperparameters.
    content_table: optional frozen `[num_items, width]` content features
      indexed like the items (see `align_embedding_table`).
    image_table: optional frozen `[num_items, image_dim]` item image
      embeddings, indexed likewise.
  """

  def __init__(self, num_users: int, num_items: int, config: RankingConfig,
               content_table: np.ndarray | None = None,
               image_table: np.ndarray | None = None):
    super().__init__()
    self.config = config
    self.user_embedding = tf.keras.layers.Embedding(num_users, config.embedding_dim)
    self.item_embedding = tf.keras.layers.Embedding(num_items, config.embedding_dim)
    self.content_table = self._frozen("content", content_table, num_items)
    self.image_table = self._frozen("image", image_table, num_items)
    if self.content_table is not None:
      self.content_projection = tf.keras.layers.Dense(config.embedding_dim)
    if self.image_table is not None:
      self.image_projection = tf.keras.layers.Dense(config.embedding_dim)
    self.attention = din_attention.DinAttention(config.attention_units)
    self.crosses = [tfrs.layers.dcn.Cross() for _ in range(config.num_cross_layers)]
    self.deep = mlp.mlp(tuple(config.deep_units) + (1,), "deep")
    self.task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[tf.keras.metrics.AUC(from_logits=True, name="auc")])

  @staticmethod
  def _frozen(name: str, table: np.ndarray | None,
              num_items: int) -> tf.Tensor | None:
    """A frozen per-item table as a constant, checked to cover every item."""
    if table is None:
      return None
    if table.shape[0] != num_items:
      raise ValueError(f"{name} table has {table.shape[0]} rows, "
                       f"expected one per item index ({num_items})")
    return tf.constant(table, tf.float32)

  def content_features(self, item_indices: tf.Tensor) -> tf.Tensor:
    """Frozen content rows of `item_indices`."""
    return tf.gather(self.content_table, item_indices)

  def item_representation(self, item_indices: tf.Tensor) -> tf.Tensor:
    parts = [self.item_embedding(item_indices)]
    if self.content_table is not None:
      parts.append(self.content_projection(self.content_features(item_indices)))
    if self.image_table is not None:
      parts.append(self.image_projection(tf.gather(self.image_table,
                                                   item_indices)))
    return tf.concat(parts, axis=-1)

  def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """`[batch]` click logits."""
    history_indices = inputs[features.HISTORY_ITEM_INDICES]
    candidate = self.item_representation(inputs[features.ITEM_INDEX])
    interest = self.attention(
        candidate, self.item_representation(history_indices),
        tf.not_equal(history_indices, features.PADDING_INDEX))
    joined = tf.concat([self.user_embedding(inputs[features.USER_INDEX]),
                        candidate, interest, candidate * interest], axis=-1)
    crossed = joined
    for cross in self.crosses:
      crossed = cross(joined, crossed)
    return self.deep(crossed)[:, 0]

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    return self.task(labels=tf.cast(inputs[features.LABEL], tf.float32),
                     predictions=self(inputs), compute_metrics=not training)
