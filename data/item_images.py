"""Item images keyed by item id: a folder, a zip, or a URI of either.

The input contract's images: one file per item, named `<item_id>.jpg`,
`<item_id>.jpeg` or `<item_id>.png` (extension case ignored), directly in a
folder (`/data/images`, `s3://bucket/images`) or at the top level of a zip
(`/data/images.zip`, `gs://bucket/images.zip`; a path ending in `.zip`).
Paths go through `data.storage`, so object storage works as for the rest of
the contract. This module finds and reads the bytes; decoding, the colour
mode check and resizing are `transforms.item_images`'.

Every problem is a `BadImageError` naming the item id and the file, with a
`kind` from `BAD_IMAGE_KINDS` so that a run that skips bad images can count
them by cause.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from typing import Optional

from data import storage

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
ZIP_EXTENSION = ".zip"

# Why an item's image is unusable.
MISSING = "missing"
DUPLICATE = "duplicate"
UNDECODABLE = "undecodable"
WRONG_MODE = "wrong_mode"
BAD_IMAGE_KINDS = (MISSING, DUPLICATE, UNDECODABLE, WRONG_MODE)


class BadImageError(ValueError):
  """An item's image is missing or unusable.

  Attributes:
    item_id: the item.
    path: the file read, or the files looked for when none exists.
    kind: one of `BAD_IMAGE_KINDS`.
    reason: what is wrong, in words.
  """

  def __init__(self, item_id: str, path: str, kind: str, reason: str):
    super().__init__(f"image of item {item_id!r} ({path}): {reason}")
    self.item_id = item_id
    self.path = path
    self.kind = kind
    self.reason = reason


def _item_id_of(name: str) -> Optional[str]:
  """The item id a file name keys, or None for a file that is no image."""
  stem, extension = os.path.splitext(posixpath.basename(name))
  return stem if extension.lower() in IMAGE_EXTENSIONS and stem else None


class ImageSource:
  """Reads item images from a folder or a zip, local or in object storage.

  A zip is opened once per `ImageSource` (a Beam worker builds its own):
  object storage serves its members by ranged reads, so the archive is never
  copied whole.

  Args:
    uri: the folder, or the `.zip` file.

  Raises:
    FileNotFoundError: if nothing is at `uri`.
    BadImageError: (`DUPLICATE`) if two files key the same item id.
  """

  def __init__(self, uri: storage.PathLike):
    self.uri = os.fspath(uri)
    self._stream = self._archive = None
    if self.uri.lower().endswith(ZIP_EXTENSION):
      if not storage.isfile(self.uri):
        raise FileNotFoundError(f"no image zip at {self.uri}")
      self._stream = storage.open_file(self.uri)
      self._archive = zipfile.ZipFile(self._stream)
      names = [info.filename for info in self._archive.infolist()
               if not info.is_dir() and "/" not in info.filename.rstrip("/")]
    else:
      if not storage.isdir(self.uri):
        raise FileNotFoundError(f"no image folder at {self.uri}")
      names = storage.listdir(self.uri)
    self._name_of_item: dict[str, str] = {}
    for name in names:
      item_id = _item_id_of(name)
      if item_id is None:
        continue
      if item_id in self._name_of_item:
        raise BadImageError(
            item_id, f"{self.describe(self._name_of_item[item_id])} and "
            f"{self.describe(name)}", DUPLICATE,
            "two files key the same item id")
      self._name_of_item[item_id] = name

  def __len__(self) -> int:
    return len(self._name_of_item)

  def describe(self, name: str) -> str:
    """How an error names file `name` of this source."""
    if self._archive is not None:
      return f"{name} in {self.uri}"
    return storage.join(self.uri, name)

  def read(self, item_id: str) -> tuple[bytes, str]:
    """The bytes of `item_id`'s image and the file's description.

    Raises:
      BadImageError: (`MISSING`) when no file keys `item_id`.
    """
    name = self._name_of_item.get(item_id)
    if name is None:
      looked_for = "|".join(IMAGE_EXTENSIONS)
      raise BadImageError(item_id, self.describe(f"{item_id}{{{looked_for}}}"),
                          MISSING, "no image file for this catalogue item")
    if self._archive is not None:
      return self._archive.read(name), self.describe(name)
    path = storage.join(self.uri, name)
    return storage.read_bytes(path), path

  def close(self) -> None:
    if self._archive is not None:
      self._archive.close()
      self._stream.close()
