"""Tests for tests.object_store: the moto server the storage tests share."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

from tests import object_store
from tests.object_store import object_store_server  # noqa: F401  pylint: disable=unused-import


def test_a_server_that_dies_on_start_is_reported_with_its_stderr():
  with tempfile.TemporaryFile() as stderr:
    process = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; sys.stderr.write('address already in use'); sys.exit(3)"],
        stderr=stderr)
    process.wait()
    with pytest.raises(RuntimeError) as error:
      object_store._wait_until_up(process, "http://127.0.0.1:9", stderr)
  assert "exited with status 3" in str(error.value)
  assert str(error.value).endswith("address already in use")


def test_a_store_accepts_only_its_own_key(object_store_server):  # noqa: F811
  store = object_store_server.create_store()
  store.client().put_object(Bucket=store.bucket, Key="a/b", Body=b"x")
  assert store.keys("a/") == ["a/b"]
  wrong_key = object_store.ObjectStore(
      store.endpoint_url, store.bucket, store.access_key_id, "not-the-secret")
  with pytest.raises(Exception, match="SignatureDoesNotMatch|AccessDenied"):
    wrong_key.keys()
