"""data.storage on local disk and on a real S3 server (moto, started by the tests)."""

import pytest

from data import storage
from tests import object_store as object_store_lib
from tests.object_store import object_store, object_store_server  # noqa: F401  pylint: disable=unused-import


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
  """A folder URI on local disk, then in a fresh bucket."""
  if request.param == "local":
    return str(tmp_path / "root")
  return request.getfixturevalue("object_store").uri("root")


def test_files_round_trip_and_list(root):
  storage.write_text(storage.join(root, "a", "x.txt"), "héllo")
  storage.write_bytes(storage.join(root, "a", "y.bin"), b"\x00\x01")

  assert storage.read_text(storage.join(root, "a", "x.txt")) == "héllo"
  assert storage.read_bytes(storage.join(root, "a", "y.bin")) == b"\x00\x01"
  assert storage.listdir(root) == ["a"]
  assert storage.listdir(storage.join(root, "a")) == ["x.txt", "y.bin"]
  assert storage.isdir(storage.join(root, "a"))
  assert storage.isfile(storage.join(root, "a", "x.txt"))
  assert not storage.exists(storage.join(root, "b"))
  assert storage.size(storage.join(root, "a", "y.bin")) == 2
  storage.remove(storage.join(root, "a", "y.bin"))
  assert storage.listdir(storage.join(root, "a")) == ["x.txt"]


def test_fingerprint_changes_with_content(root):
  folder = storage.join(root, "d")
  storage.write_text(storage.join(folder, "f.csv"), "1")
  before = storage.fingerprint(folder)
  assert storage.fingerprint(folder) == before
  storage.write_text(storage.join(folder, "f.csv"), "22")
  assert storage.fingerprint(folder) != before


def test_directories_upload_and_download(root, tmp_path):
  source = tmp_path / "source"
  (source / "sub").mkdir(parents=True)
  (source / "top.txt").write_text("t")
  (source / "sub" / "leaf.bin").write_bytes(b"leaf")

  storage.upload_dir(source, storage.join(root, "copy"))
  storage.download_dir(storage.join(root, "copy"), tmp_path / "back")

  assert (tmp_path / "back" / "top.txt").read_text() == "t"
  assert (tmp_path / "back" / "sub" / "leaf.bin").read_bytes() == b"leaf"


def test_uris_are_told_from_local_paths():
  assert storage.is_remote("s3://bucket/key")
  assert storage.is_remote("gs://bucket/key")
  assert not storage.is_remote("/tmp/x")
  assert not storage.is_remote("relative/x")
  assert storage.join("s3://bucket/a", "b", "c") == "s3://bucket/a/b/c"


def test_access_check_passes_a_usable_bucket(object_store):
  storage.check_access(object_store.uri("ws"), write=True)
  storage.check_access(object_store.uri("ws"), write=False)
  assert object_store.keys() == []  # The write probe is removed again.


@pytest.mark.parametrize("fault, env, message", object_store_lib.STORAGE_FAULTS)
def test_access_check_names_each_fault_in_one_line(object_store, monkeypatch,
                                                   fault, env, message):
  object_store_lib.set_env(monkeypatch, env)
  uri = (f"s3://{object_store_lib.MISSING_BUCKET}/ws"
         if fault == "missing bucket" else object_store.uri("ws"))

  for write in (True, False):
    with pytest.raises(storage.StorageError, match=message) as raised:
      storage.check_access(uri, write=write)
    assert "\n" not in str(raised.value)
