"""COURIER: contrastive user-intention reconstruction (arXiv 2306.05001).

Pre-trains an item content encoder whose frozen output feeds a CTR model.

- Content encoder: an MLP over the item's content vector
  (`models.ctr.content_features`), output L2-normalised.
- User-intention reconstruction: a candidate item queries the embeddings of a
  user's history (scaled dot-product attention with learned query and key
  projections, padding masked); the attention-weighted history embeddings are
  the reconstruction of that candidate from the user's behaviour.
- Contrastive loss: every candidate of the batch is reconstructed from every
  user's history. For user i, the similarity between the reconstruction of
  candidate j and candidate j's own embedding is logit (i, j); user i's own
  next item is the positive, the other users' next items (and optional hard
  negatives of user i) are the negatives (InfoNCE with a temperature). A
  history must therefore reconstruct its own target better than anyone
  else's, which also keeps embeddings apart.
- Ablation `contrastive=False`: only the squared distance between the
  reconstruction of the user's own target and that target. A constant
  encoder minimises it, so the embeddings collapse (see
  `embedding_variance`).

With item images (`ItemImages`), the content encoder gains an image branch:
an image encoder (`models.layers.image_encoder`: a small CNN from scratch, or
the user's own Keras backbone) embeds each item's decoded image, and the MLP
reads that embedding beside the content vector, so COURIER's loss trains the
image encoder. An item whose image was skipped as bad reads one learned
"no image" embedding, never a zero image.

`FeatureDropoutContrastive` is the generic baseline the paper compares with:
two feature-dropout views of the same item, InfoNCE between them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import hparams
from models.layers import contrastive
from models.layers import image_encoder as image_encoder_lib
from models.layers import mlp

# What can train the image encoder (`CourierConfig.image_objective`).
COURIER_OBJECTIVE = "courier"
SIMCLR_OBJECTIVE = "simclr"
SUPERVISED_OBJECTIVE = "supervised"
IMAGE_OBJECTIVES = (COURIER_OBJECTIVE, SIMCLR_OBJECTIVE, SUPERVISED_OBJECTIVE)


@dataclasses.dataclass(frozen=True)
class CourierConfig(hparams.HParams):
  """Hyperparameters of the COURIER pre-training.

  Attributes:
    encoder_units: content MLP layer sizes; the last is the embedding size.
    temperature: InfoNCE temperature over cosine similarities.
    contrastive: False trains reconstruction only (the collapse ablation).
    learning_rate: Adam learning rate.
    epochs: the most passes over the training examples; the pipeline's
      Trainer keeps the epoch with the lowest validation loss
      (`models.early_stopping`).
    batch_size: examples per batch; the number of in-batch candidates.
    early_stopping_patience: the pipeline's Trainer stops after this many
      epochs in a row without a lower validation loss.
    image_height: rows every item image is decoded (resized) to.
    image_width: columns every item image is decoded (resized) to.
    image_filters: channels of the small CNN's convolution blocks.
    image_embedding_dim: width of the image embedding (the CNN's or the
      backbone's projection), the ranker's image feature.
    skip_bad_images: skip (and count) items whose image is missing, corrupt
      or not RGB instead of stopping at the first.
    image_objective: what trains the image encoder. `COURIER_OBJECTIVE`:
      COURIER's own loss, through the image branch. `SIMCLR_OBJECTIVE` or
      `SUPERVISED_OBJECTIVE` (`models.ctr.image_pretraining`, the generic
      pre-training COURIER's paper compares with): the encoder is trained
      first on the images alone, for `epochs` passes over the items, and
      COURIER then pre-trains the content encoder without an image branch.
    image_class_position: with `SUPERVISED_OBJECTIVE`, the position in each
      item's category list of the category that is its class (H&M's
      importer: 2, the product type); an item without one is not trained on.
  """
  encoder_units: Sequence[int] = (128, 64)
  temperature: float = 0.1
  contrastive: bool = True
  learning_rate: float = 0.001
  epochs: int = 3
  batch_size: int = 256
  early_stopping_patience: int = 2
  image_height: int = 96
  image_width: int = 64
  image_filters: Sequence[int] = (16, 32, 64)
  image_embedding_dim: int = 32
  skip_bad_images: bool = False
  image_objective: str = COURIER_OBJECTIVE
  image_class_position: int = 0

  def __post_init__(self):
    if self.image_objective not in IMAGE_OBJECTIVES:
      raise ValueError(f"image_objective must be one of {IMAGE_OBJECTIVES}, "
                       f"got {self.image_objective!r}")
    if not 0 <= self.image_class_position < features.CATEGORY_LENGTH:
      raise ValueError(f"image_class_position must be in [0, "
                       f"{features.CATEGORY_LENGTH}), got "
                       f"{self.image_class_position}")


@dataclasses.dataclass(frozen=True)
class ItemImages:
  """Decoded images of every item index.

  Attributes:
    images: `[num_items, height, width, 3]` uint8 RGB.
    has_image: `[num_items]` bool; False for padding, OOV and items whose
      image was skipped as bad (their rows are not images).
  """
  images: np.ndarray
  has_image: np.ndarray


def build_image_encoder(config: CourierConfig,
                        backbone_path: str = "") -> tf.keras.layers.Layer:
  """The user's backbone from `backbone_path`, else a small CNN."""
  if backbone_path:
    return image_encoder_lib.BackboneEncoder(
        image_encoder_lib.load_backbone(backbone_path),
        config.image_embedding_dim)
  return image_encoder_lib.SmallCnn(config.image_filters,
                                    config.image_embedding_dim)


class ContentEncoder(tf.keras.layers.Layer):
  """Item index -> L2-normalised embedding of the item's content.

  The content is the item's content vector and, with images, its image
  embedding beside it.

  Args:
    content: `[num_items, width]` content vectors, row i for item index i.
    units: MLP layer sizes; the last is the embedding size.
    images: the decoded image of every item index, or None.
    image_encoder: embeds `[batch, height, width, 3]` images to
      `[batch, image_dim]`; required with `images`.
    image_dim: the image encoder's output width.
  """

  def __init__(self, content: np.ndarray, units: Sequence[int],
               images: ItemImages | None = None,
               image_encoder: tf.keras.layers.Layer | None = None,
               image_dim: int = 0, **kwargs):
    super().__init__(**kwargs)
    if (images is None) != (image_encoder is None):
      raise ValueError("images and image_encoder go together")
    self.content = tf.constant(content, tf.float32)
    self.mlp = mlp.mlp(units, "content_mlp")
    self.image_encoder = image_encoder
    if images is not None:
      if len(images.images) != len(content):
        raise ValueError(f"{len(images.images)} item images for "
                         f"{len(content)} content rows")
      self.images = tf.constant(images.images, tf.uint8)
      self.has_image = tf.constant(images.has_image, tf.bool)
      self.missing_image = self.add_weight(
          name="missing_image", shape=[image_dim],
          initializer=tf.keras.initializers.RandomNormal(stddev=0.1))

  @property
  def num_items(self) -> int:
    return int(self.content.shape[0])

  def encode(self, content: tf.Tensor) -> tf.Tensor:
    """Embeds content vectors `[..., width]` -> `[..., units[-1]]`."""
    return tf.math.l2_normalize(self.mlp(content), axis=-1)

  def image_embedding(self, item_indices: tf.Tensor) -> tf.Tensor:
    """`[...]` item indices -> `[..., image_dim]` image embeddings.

    Each distinct item of the call is encoded once; an item without an
    image reads the learned `missing_image` embedding.
    """
    unique, position = tf.unique(tf.reshape(item_indices, [-1]))
    encoded = self.image_encoder(tf.gather(self.images, unique))
    encoded = tf.where(tf.gather(self.has_image, unique)[:, tf.newaxis],
                       encoded, self.missing_image[tf.newaxis, :])
    return tf.reshape(tf.gather(encoded, position), tf.concat(
        [tf.shape(item_indices), tf.shape(self.missing_image)], axis=0))

  def call(self, item_indices: tf.Tensor) -> tf.Tensor:
    content = tf.gather(self.content, item_indices)
    if self.image_encoder is not None:
      content = tf.concat([content, self.image_embedding(item_indices)],
                          axis=-1)
    return self.encode(content)


class IntentionReconstruction(tf.keras.layers.Layer):
  """Reconstructs candidate items from a user's history by target attention.

  The candidate is the query, the history embeddings are keys (through a
  learned projection) and values (unchanged, so the reconstruction lives in
  the embedding space). Padding positions get no weight; an empty history
  reconstructs the zero vector.

  Args:
    attention_dim: width of the query/key projections.
  """

  def __init__(self, attention_dim: int, **kwargs):
    super().__init__(**kwargs)
    self._attention_dim = attention_dim
    self.query_projection = tf.keras.layers.Dense(attention_dim, use_bias=False)
    self.key_projection = tf.keras.layers.Dense(attention_dim, use_bias=False)

  def call(self, candidates: tf.Tensor, history: tf.Tensor,
           history_mask: tf.Tensor) -> tf.Tensor:
    """Reconstructions of every candidate from each user's history.

    Args:
      candidates: `[batch, num_candidates, dim]` (per user) or
        `[num_candidates, dim]` (the same candidates for every user).
      history: `[batch, length, dim]` history embeddings.
      history_mask: `[batch, length]`, True at real positions.

    Returns:
      `[batch, num_candidates, dim]`.
    """
    queries = self.query_projection(candidates)
    keys = self.key_projection(history)
    if candidates.shape.rank == 2:
      scores = tf.einsum("cd,bld->bcl", queries, keys)
    else:
      scores = tf.einsum("bcd,bld->bcl", queries, keys)
    scores /= math.sqrt(self._attention_dim)
    mask = history_mask[:, tf.newaxis, :]
    scores = tf.where(mask, scores, scores.dtype.min)
    weights = tf.nn.softmax(scores, axis=-1) * tf.cast(mask, scores.dtype)
    return tf.einsum("bcl,bld->bcd", weights, history)

  def get_config(self):
    return {**super().get_config(), "attention_dim": self._attention_dim}


def reconstruction_info_nce(logits: tf.Tensor, target_ids: tf.Tensor,
                            candidate_ids: tf.Tensor) -> tf.Tensor:
  """InfoNCE over per-user candidate logits; user i's positive is column i.

  Unlike `contrastive.info_nce_loss`, logit (i, j) is not a dot product of
  two fixed vectors: it depends on user i's reconstruction of candidate j.

  Args:
    logits: `[batch, num_candidates]`; columns `[0, batch)` are the users'
      targets in batch order, later columns per-user extra negatives.
    target_ids: `[batch]` item index of each user's target.
    candidate_ids: `[batch, num_candidates]` item index of each logit's
      candidate; 0 (padding) marks an absent negative. A negative equal to
      the user's target (an accidental hit) is masked out too.

  Returns:
    Scalar loss.
  """
  batch_size = tf.shape(logits)[0]
  absent = tf.equal(candidate_ids, features.PADDING_INDEX)
  return tf.reduce_mean(contrastive.softmax_losses(
      tf.where(absent, logits.dtype.min, logits), tf.range(batch_size),
      target_ids, candidate_ids))


class Courier(tfrs.Model):
  """COURIER pre-training.

  Inputs: `features.ITEM_INDEX` `[batch]` (the next item),
  `features.HISTORY_ITEM_INDICES` `[batch, length]` (0 = padding) and,
  optionally, `features.HARD_NEGATIVE_ITEM_INDICES` `[batch, num_hard]`
  (0 = none).

  Args:
    content: `[num_items, width]` content vectors.
    config: hyperparameters.
    images: the decoded image of every item index, or None (no image
      branch).
    image_encoder: the image branch's encoder; by default
      `build_image_encoder(config)`, the small CNN.
  """

  def __init__(self, content: np.ndarray, config: CourierConfig,
               images: ItemImages | None = None,
               image_encoder: tf.keras.layers.Layer | None = None):
    super().__init__()
    self.config = config
    if images is not None and image_encoder is None:
      image_encoder = build_image_encoder(config)
    self.encoder = ContentEncoder(
        content, config.encoder_units, images,
        image_encoder if images is not None else None,
        config.image_embedding_dim)
    self.reconstruction = IntentionReconstruction(config.encoder_units[-1])

  def reconstruction_logits(self, inputs: Mapping[str, tf.Tensor]
                            ) -> tuple[tf.Tensor, tf.Tensor]:
    """`[batch, batch + num_hard]` logits and their candidate item indices."""
    targets = inputs[features.ITEM_INDEX]
    history_indices = inputs[features.HISTORY_ITEM_INDICES]
    history = self.encoder(history_indices)
    history_mask = tf.not_equal(history_indices, features.PADDING_INDEX)
    batch_size = tf.shape(targets)[0]
    # Each candidate is encoded once and shared by every user's attention.
    candidates = self.encoder(targets)
    candidate_ids = tf.tile(targets[tf.newaxis, :], [batch_size, 1])
    reconstructed = self.reconstruction(candidates, history, history_mask)
    similarity = tf.einsum("bcd,cd->bc",
                           tf.math.l2_normalize(reconstructed, axis=-1), candidates)
    hard_negatives = inputs.get(features.HARD_NEGATIVE_ITEM_INDICES)
    if hard_negatives is not None:
      negatives = self.encoder(hard_negatives)
      reconstructed = self.reconstruction(negatives, history, history_mask)
      hard_similarity = tf.reduce_sum(
          tf.math.l2_normalize(reconstructed, axis=-1) * negatives, axis=-1)
      similarity = tf.concat([similarity, hard_similarity], axis=1)
      candidate_ids = tf.concat([candidate_ids, hard_negatives], axis=1)
    return similarity / self.config.temperature, candidate_ids

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    if self.config.contrastive:
      logits, candidate_ids = self.reconstruction_logits(inputs)
      return reconstruction_info_nce(logits, inputs[features.ITEM_INDEX],
                                     candidate_ids)
    history_indices = inputs[features.HISTORY_ITEM_INDICES]
    targets = self.encoder(inputs[features.ITEM_INDEX])
    reconstructed = self.reconstruction(
        targets[:, tf.newaxis, :], self.encoder(history_indices),
        tf.not_equal(history_indices, features.PADDING_INDEX))[:, 0, :]
    return tf.reduce_mean(tf.reduce_sum(tf.square(
        tf.math.l2_normalize(reconstructed, axis=-1) - targets), axis=-1))


class FeatureDropoutContrastive(tfrs.Model):
  """Generic item-level contrastive pre-training (SimCLR-style baseline).

  Two views of each item drop content features independently (dropout on
  the content vector); InfoNCE pulls an item's two views together against
  the other items of the batch. Input: `features.ITEM_INDEX` `[batch]`.

  Args:
    content: `[num_items, width]` content vectors.
    config: hyperparameters (`contrastive` is ignored).
    feature_dropout: probability of dropping each content feature per view.
  """

  def __init__(self, content: np.ndarray, config: CourierConfig,
               feature_dropout: float = 0.3):
    super().__init__()
    self.config = config
    self.encoder = ContentEncoder(content, config.encoder_units)
    self.feature_dropout = feature_dropout

  def _view(self, content: tf.Tensor) -> tf.Tensor:
    return self.encoder.encode(tf.nn.dropout(content, rate=self.feature_dropout))

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    items = inputs[features.ITEM_INDEX]
    content = tf.gather(self.encoder.content, items)
    return contrastive.info_nce_loss(self._view(content), self._view(content),
                                     self.config.temperature,
                                     candidate_ids=items)


def _table(embed, num_items: int, batch_size: int) -> np.ndarray:
  """`embed` of every item index, a batch at a time; row 0 (padding) zero."""
  indices = np.arange(num_items)
  table = np.concatenate([
      embed(tf.constant(indices[start:start + batch_size])).numpy()
      for start in range(0, len(indices), batch_size)])
  table[features.PADDING_INDEX] = 0.0
  return table


def item_embedding_table(encoder: ContentEncoder,
                         batch_size: int = 4096) -> np.ndarray:
  """`[num_items, dim]` embeddings of every item index; row 0 (padding) zero."""
  return _table(encoder, encoder.num_items, batch_size)


def image_embedding_table(encoder: ContentEncoder,
                          batch_size: int = 256) -> np.ndarray:
  """`[num_items, image_dim]` image embeddings of every item index.

  Computed once after pre-training, for the ranker's frozen image feature;
  row 0 (padding) is zero, an item without an image has the learned
  "no image" row.
  """
  return _table(encoder.image_embedding, encoder.num_items, batch_size)


def embedding_variance(table: np.ndarray) -> float:
  """Total variance of the unit-normalised item embeddings (padding excluded).

  For unit vectors it is `1 - |mean|^2`: 0 when every item has the same
  embedding (collapse), near 1 when they spread over the sphere.
  """
  rows = table[1:]
  rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
  return float(np.sum(np.var(rows, axis=0)))
