"""Copies of artifact directories, local or remote.

Shared by the components that write an artifact holding another's files
(`index_builder`'s indexed model, `components.model_selector`'s selected
model), so that neither imports the other for it.
"""

import os
from typing import Optional

import tensorflow as tf


def copy_tree(source_dir: str, target_dir: str,
              skip_subdir: Optional[str] = None) -> None:
  """Copies a directory with tf.io.gfile, so that either side may be remote.

  Args:
    source_dir: the directory to copy.
    target_dir: where its files go; created where missing, and files already
      there are overwritten.
    skip_subdir: a directory relative to `source_dir` left out, with
      everything under it.
  """
  for directory, _, files in tf.io.gfile.walk(source_dir):
    relative = os.path.relpath(directory, source_dir)
    if skip_subdir and (relative + os.sep).startswith(skip_subdir + os.sep):
      continue
    target = target_dir if relative == os.curdir else os.path.join(
        target_dir, relative)
    tf.io.gfile.makedirs(target)
    for name in files:
      tf.io.gfile.copy(os.path.join(directory, name), os.path.join(target, name),
                       overwrite=True)
