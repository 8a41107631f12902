"""Generic image pre-training: the baselines COURIER's image encoder is judged by.

COURIER (arXiv 2306.05001) trains its image encoder on user intentions and
compares it with encoders pre-trained without any user signal. Two of those
are here, each training the same image encoder (`models.layers.image_encoder`)
so that only the objective differs:

- `AugmentationContrastive`: SimCLR (Chen et al. 2020). Two random
  augmentations of each item's image (a random resized crop, a horizontal
  flip, brightness / contrast / saturation jitter) go through the encoder and
  a small projection head; InfoNCE (NT-Xent on cosine similarities) pulls an
  item's two views together against the other items of the batch. The
  encoder's output before the head is the embedding, as in SimCLR.
- `SupervisedImageClassifier`: the encoder with a softmax head over a label
  per item (e.g. H&M's product type), trained with cross-entropy on the
  items that have a label.

`pretrain_encoder` trains an encoder with either objective (the pipeline's
`image_objective`); `encoder_table` embeds every item's (unaugmented) image
once, the frozen feature the ranker reads; a frozen, untrained encoder gives
the "random encoder" baseline through the same function.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from data import features
from models import training
from models.ctr import courier
from models.layers import contrastive
from models.layers import mlp

# The integer class of each item in `SupervisedImageClassifier`'s input; -1
# marks an item without a label (it is not trained on).
ITEM_CLASS = "item_class"


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """SimCLR's augmentations, as ranges drawn per image.

  Attributes:
    crop_area: the random crop's share of the image area, `(low, high)`;
      the crop keeps the image's aspect ratio and is resized back.
    flip: flip half the images left to right.
    brightness: largest brightness shift, in pixel values (of 255).
    contrast: contrast factor drawn from `[1 - contrast, 1 + contrast]`.
    saturation: saturation factor drawn from `[1 - saturation,
      1 + saturation]`.
  """
  crop_area: tuple[float, float] = (0.5, 1.0)
  flip: bool = True
  brightness: float = 32.0
  contrast: float = 0.4
  saturation: float = 0.4


def augment(images: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
  """One random view of each image.

  Args:
    images: `[batch, height, width, 3]` uint8 or float in [0, 255].
    augmentation: the ranges.

  Returns:
    `[batch, height, width, 3]` float32 in [0, 255].
  """
  images = tf.cast(images, tf.float32)
  batch = tf.shape(images)[0]
  size = tf.shape(images)[1:3]
  side = tf.sqrt(tf.random.uniform([batch], *augmentation.crop_area))
  top = tf.random.uniform([batch]) * (1.0 - side)
  left = tf.random.uniform([batch]) * (1.0 - side)
  boxes = tf.stack([top, left, top + side, left + side], axis=1)
  images = tf.image.crop_and_resize(images, boxes, tf.range(batch), size)
  if augmentation.flip:
    flipped = tf.random.uniform([batch]) < 0.5
    images = tf.where(flipped[:, tf.newaxis, tf.newaxis, tf.newaxis],
                      tf.reverse(images, axis=[2]), images)

  def per_image(low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([batch, 1, 1, 1], low, high)

  images += per_image(-augmentation.brightness, augmentation.brightness)
  mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
  images = mean + (images - mean) * per_image(1.0 - augmentation.contrast,
                                              1.0 + augmentation.contrast)
  gray = tf.image.rgb_to_grayscale(images)
  images = gray + (images - gray) * per_image(1.0 - augmentation.saturation,
                                              1.0 + augmentation.saturation)
  return tf.clip_by_value(images, 0.0, 255.0)


def _check_images(images: courier.ItemImages) -> None:
  if not images.has_image[1:].any():
    raise ValueError("no item has an image to pre-train on")


class AugmentationContrastive(tfrs.Model):
  """SimCLR pre-training of an image encoder on the items' images.

  Input: `features.ITEM_INDEX` `[batch]`, items with an image.

  Args:
    images: the decoded image of every item index.
    encoder: the image encoder to train (`[b, h, w, 3]` -> `[b, dim]`).
    projection_units: the projection head's layer sizes.
    temperature: InfoNCE temperature over cosine similarities.
    augmentation: the views' random ranges.
  """

  def __init__(self, images: courier.ItemImages,
               encoder: tf.keras.layers.Layer,
               projection_units: Sequence[int] = (64, 32),
               temperature: float = 0.1,
               augmentation: Augmentation = Augmentation()):
    super().__init__()
    _check_images(images)
    self.images = tf.constant(images.images, tf.uint8)
    self.encoder = encoder
    self.projection = mlp.mlp(projection_units, "projection_head")
    self.temperature = temperature
    self.augmentation = augmentation

  def _view(self, images: tf.Tensor) -> tf.Tensor:
    return self.projection(self.encoder(augment(images, self.augmentation)))

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    items = inputs[features.ITEM_INDEX]
    images = tf.gather(self.images, items)
    return contrastive.cosine_info_nce_loss(
        self._view(images), self._view(images), self.temperature,
        candidate_ids=items)


class SupervisedImageClassifier(tfrs.Model):
  """An image encoder trained to predict each item's class from its image.

  Inputs: `features.ITEM_INDEX` `[batch]` and `ITEM_CLASS` `[batch]` (the
  class index, -1 for an unlabelled item, which adds no loss).

  Args:
    images: the decoded image of every item index.
    encoder: the image encoder to train.
    num_classes: the classes of the softmax head.
  """

  def __init__(self, images: courier.ItemImages,
               encoder: tf.keras.layers.Layer, num_classes: int):
    super().__init__()
    _check_images(images)
    self.images = tf.constant(images.images, tf.uint8)
    self.encoder = encoder
    self.head = tf.keras.layers.Dense(num_classes)

  def call(self, item_indices: tf.Tensor) -> tf.Tensor:
    """`[batch, num_classes]` class logits of the items' images."""
    return self.head(self.encoder(tf.gather(self.images, item_indices)))

  def compute_loss(self, inputs: Mapping[str, tf.Tensor],
                   training: bool = False) -> tf.Tensor:
    classes = tf.cast(inputs[ITEM_CLASS], tf.int32)
    labelled = classes >= 0
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.maximum(classes, 0), self(inputs[features.ITEM_INDEX]))
    weights = tf.cast(labelled, losses.dtype)
    return tf.reduce_sum(losses * weights) / tf.maximum(
        tf.reduce_sum(weights), 1.0)


def objective_examples(objective: str, images: courier.ItemImages,
                       classes: np.ndarray | None = None
                       ) -> dict[str, np.ndarray]:
  """The items one epoch of a generic objective passes over.

  Args:
    objective: `courier.SIMCLR_OBJECTIVE` or `courier.SUPERVISED_OBJECTIVE`.
    images: the decoded image of every item index.
    classes: `[num_items]` class of every item index, -1 for none; only
      for `SUPERVISED_OBJECTIVE`.

  Returns:
    `features.ITEM_INDEX` of every item with an image, and with a class for
    `SUPERVISED_OBJECTIVE` (then with its `ITEM_CLASS`).

  Raises:
    ValueError: if no item qualifies.
  """
  items = np.flatnonzero(images.has_image)
  items = items[items != features.PADDING_INDEX]
  if objective == courier.SIMCLR_OBJECTIVE:
    examples = {features.ITEM_INDEX: items}
  elif objective == courier.SUPERVISED_OBJECTIVE:
    items = items[classes[items] >= 0]
    examples = {features.ITEM_INDEX: items, ITEM_CLASS: classes[items]}
  else:
    raise ValueError(f"{objective!r} is not a generic image objective")
  if not len(items):
    raise ValueError(f"image objective {objective!r}: no item to pre-train "
                     "on (none has an image"
                     + (", or a class" if len(examples) > 1 else "") + ")")
  return examples


def objective_model(objective: str, images: courier.ItemImages,
                    encoder: tf.keras.layers.Layer, *,
                    projection_units: Sequence[int], temperature: float,
                    classes: np.ndarray | None = None) -> tfrs.Model:
  """The generic objective's model around `encoder`.

  Args:
    objective: `courier.SIMCLR_OBJECTIVE` or `courier.SUPERVISED_OBJECTIVE`.
    images: the decoded image of every item index.
    encoder: the image encoder to train.
    projection_units: SimCLR's projection head.
    temperature: SimCLR's InfoNCE temperature.
    classes: `[num_items]` class of every item index, -1 for none; sizes
      the supervised head.
  """
  if objective == courier.SIMCLR_OBJECTIVE:
    return AugmentationContrastive(images, encoder, projection_units,
                                   temperature)
  if objective == courier.SUPERVISED_OBJECTIVE:
    return SupervisedImageClassifier(images, encoder, int(classes.max()) + 1)
  raise ValueError(f"{objective!r} is not a generic image objective")


def pretrain_encoder(objective: str, images: courier.ItemImages,
                     encoder: tf.keras.layers.Layer,
                     config: courier.CourierConfig, seed: int,
                     classes: np.ndarray | None = None) -> list[float]:
  """Trains `encoder` with a generic objective, `config.epochs` passes.

  Each pass visits every item of `objective_examples` once, in batches of
  `config.batch_size` (Adam at `config.learning_rate`); SimCLR's head is
  `config.encoder_units` and its temperature `config.temperature`.

  Returns:
    The training loss of each pass.
  """
  model = objective_model(objective, images, encoder,
                          projection_units=config.encoder_units,
                          temperature=config.temperature, classes=classes)
  batches = training.shuffled_batches(
      objective_examples(objective, images, classes), config.batch_size,
      seed, drop_remainder=False)
  history = training.fit(model, batches, config.learning_rate, config.epochs)
  return [float(loss) for loss in history["loss"]]


def encoder_table(encoder: tf.keras.layers.Layer,
                  images: courier.ItemImages, batch_size: int = 256,
                  zero_without_image: bool = False) -> np.ndarray:
  """`[num_items, dim]` embeddings of every item's image, computed once.

  Args:
    encoder: the image encoder.
    images: the decoded image of every item index.
    batch_size: images per encoder call.
    zero_without_image: the rows of items without an image (OOV indices,
      items skipped as bad and counted in the run summary) are zero, which
      the ranker's trainable projection maps to one learned value; these
      encoders have no "no image" row of their own. Off, such an item is
      an error.

  Raises:
    ValueError: if an item (any index but padding) has no image and
      `zero_without_image` is off: a zero row would be a silent stand-in.
  """
  missing = np.flatnonzero(~images.has_image[1:]) + 1
  if len(missing) and not zero_without_image:
    raise ValueError(f"{len(missing)} items have no image (first item "
                     f"index {missing[0]}); these baselines need every one")
  table = np.concatenate([
      encoder(tf.constant(images.images[start:start + batch_size])).numpy()
      for start in range(0, len(images.images), batch_size)])
  table[~images.has_image] = 0.0
  table[features.PADDING_INDEX] = 0.0
  return table
