"""Tests for decoding item images: one test per bad-image case, and the Beam
step that decodes a catalogue, stopping at or counting the bad ones."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from data import item_images
from transforms import item_images as decoding

HEIGHT, WIDTH = 6, 4
RED = (200, 10, 10)


def _encoded(mode: str, size=(WIDTH, HEIGHT), color=RED, fmt="PNG") -> bytes:
  """An image file of one colour, `size` as Pillow's (width, height)."""
  image = Image.new("RGB", size, color).convert(mode)
  stream = io.BytesIO()
  image.save(stream, format=fmt)
  return stream.getvalue()


def _decode(data: bytes) -> tuple[np.ndarray, tuple[int, int]]:
  return decoding.decode_image(data, "i7", "images/i7.png", HEIGHT, WIDTH)


def _bad(data: bytes) -> item_images.BadImageError:
  with pytest.raises(item_images.BadImageError) as error:
    _decode(data)
  assert error.value.item_id == "i7" and error.value.path == "images/i7.png"
  assert "'i7'" in str(error.value) and "images/i7.png" in str(error.value)
  return error.value


def test_an_rgb_png_decodes_to_its_pixels():
  pixels, original = _decode(_encoded("RGB"))
  assert original == (HEIGHT, WIDTH)
  assert pixels.dtype == np.uint8 and pixels.shape == (HEIGHT, WIDTH, 3)
  assert (pixels == RED).all()


def test_an_rgb_jpeg_decodes_close_to_its_colour():
  pixels, _ = _decode(_encoded("RGB", fmt="JPEG"))
  assert np.abs(pixels.astype(int) - RED).max() <= 3


def test_an_image_of_another_size_is_resized_not_refused():
  pixels, original = _decode(_encoded("RGB", size=(20, 30)))
  assert original == (30, 20)
  assert pixels.shape == (HEIGHT, WIDTH, 3) and (pixels == RED).all()


def test_corrupt_bytes_are_undecodable():
  assert _bad(b"\x89PNG not really").kind == item_images.UNDECODABLE


def test_a_truncated_jpeg_is_undecodable():
  data = _encoded("RGB", size=(64, 96), fmt="JPEG")
  assert _bad(data[:len(data) // 2]).kind == item_images.UNDECODABLE


def test_a_gif_is_undecodable_as_jpeg_or_png():
  error = _bad(_encoded("P", fmt="GIF"))
  assert error.kind == item_images.UNDECODABLE and "GIF" in error.reason


@pytest.mark.parametrize("mode, fmt, words", [
    ("L", "PNG", "grayscale"),
    ("L", "JPEG", "grayscale"),
    ("CMYK", "JPEG", "CMYK"),
    ("RGBA", "PNG", "RGB with alpha"),
    ("P", "PNG", "palette"),
])
def test_an_image_that_is_not_rgb_has_the_wrong_mode(mode, fmt, words):
  error = _bad(_encoded(mode, fmt=fmt))
  assert error.kind == item_images.WRONG_MODE
  assert f"colour mode {mode} ({words})" in error.reason


@pytest.fixture(name="catalogue_folder")
def _catalogue_folder(tmp_path):
  """Items a (RGB), b (RGB, another size), c (grayscale), e (corrupt);
  d has no file."""
  folder = tmp_path / "images"
  folder.mkdir()
  (folder / "a.png").write_bytes(_encoded("RGB"))
  (folder / "b.jpg").write_bytes(_encoded("RGB", size=(8, 12), fmt="JPEG"))
  (folder / "c.png").write_bytes(_encoded("L"))
  (folder / "e.jpg").write_bytes(b"corrupt")
  return folder


def test_the_beam_step_stops_at_the_first_bad_image_naming_it(
    catalogue_folder, tmp_path):
  with pytest.raises(item_images.BadImageError) as error:
    decoding.decode_catalogue_images(
        str(catalogue_folder), ["", "a", "b", "c", "d", "e", ""],
        str(tmp_path / "decoded"), HEIGHT, WIDTH)
  assert error.value.item_id == "c" and error.value.kind == item_images.WRONG_MODE
  assert str(catalogue_folder / "c.png") in str(error.value)
  assert "2 more catalogue items have bad images" in str(error.value)
  assert "skip_bad_images=true" in str(error.value)


def test_the_beam_step_skips_and_counts_bad_images_when_asked(
    catalogue_folder, tmp_path):
  item_ids = ["", "a", "b", "c", "d", "e", ""]
  output = str(tmp_path / "decoded")
  summary = decoding.decode_catalogue_images(
      str(catalogue_folder), item_ids, output, HEIGHT, WIDTH, skip_bad=True)
  assert (summary.items, summary.decoded, summary.resized) == (5, 2, 1)
  assert {kind: [record["item_id"] for record in records]
          for kind, records in summary.skipped.items()} == {
              item_images.WRONG_MODE: ["c"], item_images.MISSING: ["d"],
              item_images.UNDECODABLE: ["e"]}
  assert summary.skipped[item_images.UNDECODABLE][0]["path"] == str(
      catalogue_folder / "e.jpg")
  assert "skipped 3: 1 missing, 1 undecodable, 1 wrong_mode" in summary.in_words()
  images, has_image = decoding.read_decoded_images(output, item_ids, HEIGHT,
                                                   WIDTH)
  np.testing.assert_array_equal(has_image, [0, 1, 1, 0, 0, 0, 0])
  assert (images[1] == RED).all()
  assert np.abs(images[2].astype(int) - RED).max() <= 3
  summary.write(str(tmp_path / "run"))
  assert decoding.read_summary(str(tmp_path / "run")) == summary
  assert decoding.read_summary(str(tmp_path / "no_run")) is None
