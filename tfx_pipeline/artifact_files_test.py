"""Tests for copying artifact directories."""

import os

from tfx_pipeline import artifact_files


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as out:
    out.write(text)


def _files(root):
  return {os.path.relpath(os.path.join(directory, name), root):
          open(os.path.join(directory, name)).read()
          for directory, _, names in os.walk(root) for name in names}


def test_copy_tree_copies_every_level_and_overwrites(tmp_path):
  source, target = str(tmp_path / "source"), str(tmp_path / "target")
  _write(os.path.join(source, "saved_model.pb"), "model")
  _write(os.path.join(source, "variables", "variables.index"), "index")
  _write(os.path.join(target, "saved_model.pb"), "stale")
  artifact_files.copy_tree(source, target)
  assert _files(target) == {"saved_model.pb": "model",
                            os.path.join("variables", "variables.index"):
                                "index"}


def test_copy_tree_leaves_out_the_skipped_directory_only(tmp_path):
  source, target = str(tmp_path / "source"), str(tmp_path / "target")
  _write(os.path.join(source, "assets.extra", "scann_index", "a", "f"), "old")
  _write(os.path.join(source, "assets.extra", "scann_index_notes", "f"), "kept")
  artifact_files.copy_tree(source, target,
                           skip_subdir=os.path.join("assets.extra",
                                                    "scann_index"))
  assert _files(target) == {
      os.path.join("assets.extra", "scann_index_notes", "f"): "kept"}
