"""Stand-ins for the Transform graph, for tests of the retrieval exports.

Raw item ids "1", "2", ... are their own item indices and "" is padding, so
a test's catalogue and histories read as plain numbers. Also: running a
script in a bare TensorFlow process, to show an export needs nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Sequence

import tensorflow as tf

from data import features

RAW_FEATURE_SPEC = {
    features.USER_ID: tf.io.FixedLenFeature([], tf.string),
    features.HISTORY_ITEM_IDS: tf.io.VarLenFeature(tf.string),
    features.TIMESTAMP: tf.io.FixedLenFeature([], tf.int64),
    features.ITEM_ID: tf.io.FixedLenFeature([], tf.string),
    features.SEEN_ITEM_IDS: tf.io.VarLenFeature(tf.string),
}


def _item_indices(ids: tf.Tensor) -> tf.Tensor:
  return tf.strings.to_number(tf.where(ids == "", "0", ids), tf.int64)


def fake_transform(raw):
  """Stands in for the Transform layer on `RAW_FEATURE_SPEC`'s features."""
  return {
      features.USER_INDEX: tf.zeros_like(
          tf.reshape(raw[features.TIMESTAMP], [-1])),
      features.HISTORY_ITEM_INDICES: _item_indices(
          tf.sparse.to_dense(raw[features.HISTORY_ITEM_IDS])),
      features.ITEM_INDEX: _item_indices(
          tf.reshape(raw[features.ITEM_ID], [-1])),
  }


def query_inputs(histories: Sequence[Sequence[str]]) -> dict[str, tf.Tensor]:
  """A query signature's inputs for one user per (equal-length) history."""
  return dict(user_id=tf.constant(["u"] * len(histories)),
              history_item_ids=tf.constant(histories),
              timestamp=tf.zeros([len(histories)], tf.int64))


def serialized_example(target: str, history: Sequence[str],
                       seen: Sequence[str] = ()) -> bytes:
  """An eval tf.Example: `target` chosen after `history` and `seen`."""
  example = tf.train.Example()
  for name, values in ((features.USER_ID, [b"u"]),
                       (features.ITEM_ID, [target.encode()]),
                       (features.HISTORY_ITEM_IDS,
                        [item.encode() for item in history]),
                       (features.SEEN_ITEM_IDS,
                        [item.encode() for item in seen])):
    example.features.feature[name].bytes_list.value.extend(values)
  example.features.feature[features.TIMESTAMP].int64_list.value.append(0)
  return example.SerializeToString()


# Packages a served model must not need.
_NOT_NEEDED = ("models", "data", "transforms", "scann", "tfx",
               "tensorflow_transform")


def run_in_bare_tensorflow(script: str, cwd: str) -> list[str]:
  """Runs `script` in a fresh Python that has nothing of the project.

  The project is not on its path (`cwd` must be outside the checkout) and
  it inherits no Keras choice; it fails if the script imported any of
  `_NOT_NEEDED`, e.g. because loading a SavedModel needed a custom op.

  Args:
    script: Python source; it may import only TensorFlow and the standard
      library.
    cwd: where it runs.

  Returns:
    The lines the script printed.
  """
  check = textwrap.dedent(f"""
      import sys as _sys
      _loaded = sorted(name for name in _sys.modules
                       if name.split(".")[0] in {_NOT_NEEDED!r})
      assert not _loaded, f"a served model imported {{_loaded}}"
      """)
  env = {name: value for name, value in os.environ.items()
         if name not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
  result = subprocess.run(
      [sys.executable, "-c", textwrap.dedent(script) + check], env=env,
      cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout.splitlines()
