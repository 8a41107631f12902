"""Tests of the version policy and the registry's version discovery."""

import pytest
import tensorflow as tf

from serving import model_registry
from serving.testing_grpc import publish_version
from serving.testing_models import MODEL_NAME


@pytest.mark.parametrize("text, available, served", [
    ("latest:1", {1, 2, 3}, {3}),
    ("latest:2", {1, 2, 3}, {2, 3}),
    ("all", {1, 2, 3}, {1, 2, 3}),
    ("specific:1,3", {1, 2}, {1}),
])
def test_version_policy_selects_versions(text, available, served):
  assert model_registry.VersionPolicy.parse(text).select(available) == served


@pytest.mark.parametrize("text", ["latest:0", "newest", "specific:", "all:2"])
def test_bad_version_policy_is_rejected(text):
  with pytest.raises(ValueError, match="version policy"):
    model_registry.VersionPolicy.parse(text)


def test_ready_versions_skips_unfinished_and_non_numeric_directories(
    tmp_path):
  for name in ("1", "2", "3", "latest", "-4"):
    (tmp_path / name).mkdir()
  for name in ("1", "3", "latest", "-4"):
    (tmp_path / name / "saved_model.pb").write_bytes(b"")
  (tmp_path / "7").write_text("a file, not a version directory")
  assert model_registry.ready_versions(str(tmp_path)) == {
      1: str(tmp_path / "1"), 3: str(tmp_path / "3")}


def test_a_store_that_stops_answering_unloads_nothing(model_template,
                                                      tmp_path, monkeypatch):
  publish_version(model_template, tmp_path / MODEL_NAME, 1)
  registry = model_registry.ModelRegistry(str(tmp_path))
  assert registry.refresh()

  # What TensorFlow's S3 plugin answers while its store does not answer:
  # nothing is found, so every path looks gone.
  def not_found(path, *_):
    raise tf.errors.NotFoundError(None, None, f"Object {path} does not exist")

  monkeypatch.setattr(tf.io.gfile, "stat", not_found)
  monkeypatch.setattr(tf.io.gfile, "isdir", lambda path: False)
  monkeypatch.setattr(tf.io.gfile, "exists", lambda path: False)

  assert not registry.refresh()
  assert registry.loaded_versions() == {MODEL_NAME: [1]}
