"""Decodes a catalogue's item images to fixed-size RGB arrays, as a Beam step.

`decode_catalogue_images` runs one Beam pipeline over the catalogue's item
ids: each worker opens the image source (`data.item_images.ImageSource`: a
folder, a zip, or a URI of either) once, decodes each item's JPEG or PNG
with Pillow, checks it is RGB and resizes it to the asked size. The decoded
images are written as gzipped TFRecords of `tf.train.Example`s keyed by item
id (`read_decoded_images` reads them back in catalogue order); the bad ones
go to a side output, never to a zero image.

Bad images: an item without a file, bytes that are no decodable JPEG or PNG,
or an image whose colour mode is not RGB (grayscale, CMYK, RGBA, palette,
16-bit...). By default the first one (in item id order) stops the step with
a `BadImageError` that names the item and the file, and says how many items
are bad. With `skip_bad=True` every bad item is skipped and counted by cause
in the `DecodingSummary`, which the Trainer writes beside its model
(`SUMMARY_FILE`) for the run summary. An image of another size is not bad:
it is resized (bilinear) and counted as resized.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
from typing import Optional, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
from PIL import Image

from data import item_images
from data import storage

# The ModelRun file a Trainer that decoded images writes its summary to.
SUMMARY_FILE = "item_images.json"
_EXAMPLES_PREFIX = "decoded_images"
_EXAMPLES_SUFFIX = ".tfrecord.gz"
_BAD_PREFIX = "bad_images"
_IMAGE = "image"
_READ_BATCH_SIZE = 1024
_METRICS_NAMESPACE = "item_images"
_RESIZED = "resized"
_FORMATS = ("JPEG", "PNG")
_MODE_NAMES = {"1": "1-bit black and white", "L": "grayscale",
               "LA": "grayscale with alpha", "P": "palette",
               "PA": "palette with alpha", "RGBA": "RGB with alpha",
               "CMYK": "CMYK", "YCbCr": "YCbCr", "I": "32-bit integer",
               "I;16": "16-bit grayscale", "F": "32-bit float"}


def decode_image(data: bytes, item_id: str, path: str, height: int,
                 width: int) -> tuple[np.ndarray, tuple[int, int]]:
  """One item's image as `[height, width, 3]` uint8 RGB.

  Args:
    data: the file's bytes.
    item_id: the item, for errors.
    path: the file, for errors.
    height: output rows.
    width: output columns.

  Returns:
    The image, and its `(height, width)` before resizing.

  Raises:
    BadImageError: `UNDECODABLE` for bytes that are no complete JPEG or PNG,
      `WRONG_MODE` for an image that is not RGB.
  """
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      if image.format not in _FORMATS:
        raise item_images.BadImageError(
            item_id, path, item_images.UNDECODABLE,
            f"a {image.format} file; expected JPEG or PNG")
      if image.mode != "RGB":
        raise item_images.BadImageError(
            item_id, path, item_images.WRONG_MODE,
            f"colour mode {image.mode} "
            f"({_MODE_NAMES.get(image.mode, 'not RGB')}); expected RGB, 3 "
            "channels: convert the file to RGB")
      original = (image.height, image.width)
      if original != (height, width):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
      return np.asarray(image, np.uint8), original
  except item_images.BadImageError:
    raise
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
    raise item_images.BadImageError(
        item_id, path, item_images.UNDECODABLE,
        f"cannot decode as JPEG or PNG: {error}") from None


def _bad_record(error: item_images.BadImageError) -> str:
  return json.dumps({"item_id": error.item_id, "path": error.path,
                     "kind": error.kind, "reason": error.reason})


class _DecodeItemImages(beam.DoFn):
  """item id -> serialized Example of its decoded image; bad ones tagged."""

  BAD = "bad"

  def __init__(self, images_uri: str, height: int, width: int):
    self._images_uri = images_uri
    self._height = height
    self._width = width
    self._source = None
    self._resized = beam.metrics.Metrics.counter(_METRICS_NAMESPACE, _RESIZED)

  def setup(self):
    self._source = item_images.ImageSource(self._images_uri)

  def teardown(self):
    if self._source is not None:
      self._source.close()

  def process(self, item_id: str):
    try:
      data, path = self._source.read(item_id)
      pixels, (height, width) = decode_image(data, item_id, path,
                                             self._height, self._width)
    except item_images.BadImageError as error:
      yield beam.pvalue.TaggedOutput(self.BAD, _bad_record(error))
      return
    if (height, width) != (self._height, self._width):
      self._resized.inc()
    yield tf.train.Example(features=tf.train.Features(feature={
        "item_id": _bytes_feature(item_id.encode()),
        _IMAGE: _bytes_feature(pixels.tobytes())})).SerializeToString()


def _bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


@dataclasses.dataclass(frozen=True)
class DecodingSummary:
  """What the decoding step did with a catalogue's images.

  Attributes:
    images_uri: the image source.
    height: decoded rows.
    width: decoded columns.
    items: catalogue items asked for.
    decoded: items with a decoded image.
    resized: decoded items whose file had another size.
    skipped: kind (`data.item_images.BAD_IMAGE_KINDS`) -> the skipped items'
      `{"item_id", "path", "reason"}`; empty unless bad images were skipped.
  """
  images_uri: str
  height: int
  width: int
  items: int
  decoded: int
  resized: int
  skipped: dict[str, list[dict[str, str]]] = dataclasses.field(
      default_factory=dict)

  @property
  def skipped_count(self) -> int:
    return sum(len(items) for items in self.skipped.values())

  def in_words(self) -> str:
    """One line for the run summary."""
    counts = ", ".join(f"{len(self.skipped[kind])} {kind}"
                       for kind in sorted(self.skipped))
    return (f"{self.decoded} of {self.items} catalogue items' images decoded "
            f"to {self.height}x{self.width} from {self.images_uri} "
            f"({self.resized} resized); skipped {self.skipped_count}"
            + (f": {counts}" if counts else ""))

  def write(self, directory: str) -> str:
    """Writes the summary as `directory/SUMMARY_FILE`; returns its path."""
    path = storage.join(directory, SUMMARY_FILE)
    storage.write_text(path, json.dumps(dataclasses.asdict(self), indent=1))
    return path


def read_summary(directory: str) -> Optional[DecodingSummary]:
  """The summary in `directory`, or None if no images were decoded there."""
  path = storage.join(directory, SUMMARY_FILE)
  return (DecodingSummary(**json.loads(storage.read_text(path)))
          if storage.exists(path) else None)


def decode_catalogue_images(images_uri: str, item_ids: Sequence[str],
                            output_dir: str, height: int, width: int,
                            skip_bad: bool = False,
                            pipeline_args: Sequence[str] = ()
                            ) -> DecodingSummary:
  """Decodes every item's image into `output_dir` with one Beam pipeline.

  Args:
    images_uri: the folder or `.zip` of `<item_id>.jpg|.png` files.
    item_ids: the catalogue's raw ids; "" (padding, OOV) is not an item.
    output_dir: where the decoded TFRecords (and the bad-image records) go.
    height: decoded rows.
    width: decoded columns.
    skip_bad: skip bad images (counted) instead of stopping at the first.
    pipeline_args: Beam pipeline options; none runs Beam's in-process
      runner.

  Returns:
    What was decoded and skipped.

  Raises:
    BadImageError: without `skip_bad`, for the first bad image in item id
      order (its reason says how many more there are).
    FileNotFoundError: if nothing is at `images_uri`.
  """
  # Fails fast, before a pipeline starts, on a wrong path or duplicate keys.
  item_images.ImageSource(images_uri).close()
  items = sorted({item_id for item_id in item_ids if item_id})
  tf.io.gfile.makedirs(output_dir)
  pipeline = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(
      list(pipeline_args)))
  decoded = (
      pipeline
      | "ItemIds" >> beam.Create(items)
      | "Decode" >> beam.ParDo(_DecodeItemImages(
          images_uri, height, width)).with_outputs(
              _DecodeItemImages.BAD, main="decoded"))
  _ = decoded.decoded | "WriteImages" >> beam.io.WriteToTFRecord(
      os.path.join(output_dir, _EXAMPLES_PREFIX),
      file_name_suffix=_EXAMPLES_SUFFIX)
  _ = decoded[_DecodeItemImages.BAD] | "WriteBad" >> beam.io.WriteToText(
      os.path.join(output_dir, _BAD_PREFIX), file_name_suffix=".jsonl")
  result = pipeline.run()
  result.wait_until_finish()
  resized = sum(counter.committed for counter in result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(_METRICS_NAMESPACE)
      .with_name(_RESIZED))["counters"])
  bad = sorted((json.loads(line) for path in tf.io.gfile.glob(
      os.path.join(output_dir, f"{_BAD_PREFIX}*")) for line in
                tf.io.gfile.GFile(path).read().splitlines() if line),
               key=lambda record: record["item_id"])
  if bad and not skip_bad:
    first = bad[0]
    more = (f"; {len(bad) - 1} more catalogue items have bad images"
            if len(bad) > 1 else "")
    raise item_images.BadImageError(
        first["item_id"], first["path"], first["kind"],
        f"{first['reason']}{more} (fix them, or skip them with "
        "skip_bad_images=true: they are then counted in the run summary)")
  skipped = collections.defaultdict(list)
  for record in bad:
    skipped[record.pop("kind")].append(record)
  return DecodingSummary(str(images_uri), height, width, len(items),
                         len(items) - len(bad), resized, dict(skipped))


def read_decoded_images(output_dir: str, item_ids: Sequence[str], height: int,
                        width: int) -> tuple[np.ndarray, np.ndarray]:
  """The decoded images in catalogue order.

  Args:
    output_dir: `decode_catalogue_images`' output.
    item_ids: raw id of every item index ("" for padding and OOV).
    height: decoded rows.
    width: decoded columns.

  Returns:
    `([len(item_ids), height, width, 3] uint8, [len(item_ids)] bool)`: the
    images, and which rows have one (False for padding, OOV and skipped
    items, whose rows are zero and must not be read as images).
  """
  index_of = {item_id: index for index, item_id in enumerate(item_ids)
              if item_id}
  images = np.zeros((len(item_ids), height, width, 3), np.uint8)
  has_image = np.zeros(len(item_ids), bool)
  files = tf.io.gfile.glob(os.path.join(
      output_dir, f"{_EXAMPLES_PREFIX}*{_EXAMPLES_SUFFIX}"))
  spec = {"item_id": tf.io.FixedLenFeature([], tf.string),
          _IMAGE: tf.io.FixedLenFeature([], tf.string)}
  records = tf.data.TFRecordDataset(tf.constant(files, tf.string),
                                    compression_type="GZIP")
  for batch in records.batch(_READ_BATCH_SIZE).map(
      lambda batch: tf.io.parse_example(batch, spec)).as_numpy_iterator():
    for item_id, pixels in zip(batch["item_id"], batch[_IMAGE]):
      index = index_of.get(item_id.decode())
      if index is not None:
        images[index] = np.frombuffer(pixels, np.uint8).reshape(height, width,
                                                                3)
        has_image[index] = True
  return images, has_image
