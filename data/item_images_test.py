"""Tests for finding and reading item images in a folder or a zip."""

from __future__ import annotations

import zipfile

import pytest

from data import item_images


def _folder(tmp_path, files: dict[str, bytes]):
  for name, data in files.items():
    (tmp_path / name).write_bytes(data)
  return tmp_path


def _zip(tmp_path, files: dict[str, bytes]):
  path = tmp_path / "images.zip"
  with zipfile.ZipFile(path, "w") as archive:
    for name, data in files.items():
      archive.writestr(name, data)
  return path


@pytest.mark.parametrize("make_source", [_folder, _zip])
def test_reads_each_item_by_id_whatever_the_extension_case(tmp_path,
                                                           make_source):
  source = item_images.ImageSource(make_source(tmp_path, {
      "0108775015.jpg": b"a", "i2.PNG": b"b", "i3.jpeg": b"c",
      "notes.txt": b"not an image"}))
  assert len(source) == 3
  data, path = source.read("0108775015")
  assert data == b"a" and "0108775015.jpg" in path
  assert source.read("i2")[0] == b"b"
  assert source.read("i3")[0] == b"c"
  source.close()


def test_a_zip_member_is_named_with_its_archive(tmp_path):
  source = item_images.ImageSource(_zip(tmp_path, {"i1.jpg": b"a"}))
  assert source.read("i1")[1] == f"i1.jpg in {tmp_path / 'images.zip'}"


@pytest.mark.parametrize("make_source", [_folder, _zip])
def test_a_catalogue_item_without_a_file_is_missing_naming_item_and_file(
    tmp_path, make_source):
  source = item_images.ImageSource(make_source(tmp_path, {"i1.jpg": b"a"}))
  with pytest.raises(item_images.BadImageError) as error:
    source.read("i2")
  assert error.value.kind == item_images.MISSING
  assert error.value.item_id == "i2"
  assert "'i2'" in str(error.value) and "i2{.jpg|.jpeg|.png}" in str(error.value)


def test_two_files_for_one_item_are_refused_naming_both(tmp_path):
  with pytest.raises(item_images.BadImageError) as error:
    item_images.ImageSource(_folder(tmp_path, {"i1.jpg": b"a", "i1.png": b"b"}))
  assert error.value.kind == item_images.DUPLICATE
  assert "i1.jpg" in str(error.value) and "i1.png" in str(error.value)


@pytest.mark.parametrize("name", ["absent", "absent.zip"])
def test_nothing_at_the_path_is_not_found(tmp_path, name):
  with pytest.raises(FileNotFoundError, match="absent"):
    item_images.ImageSource(tmp_path / name)
