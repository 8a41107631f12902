"""A ModelBlessing written by a gate of the project's own, with its reasons.

The Pusher reads only the blessing's `blessed` property and its BLESSED or
NOT_BLESSED marker file; BaselineGate and ModelSelector also write
`comparison.json` beside the marker, saying what they compared and why.
"""

import json
import os

import tensorflow as tf
from tfx.components.evaluator import constants

COMPARISON_FILE = "comparison.json"
BLESSED_KEY = constants.ARTIFACT_PROPERTY_BLESSED_KEY


def write(blessing, blessed: bool, comparison: dict) -> None:
  """Marks `blessing` blessed or not and writes `comparison` beside it.

  Args:
    blessing: the output ModelBlessing artifact.
    blessed: whether the Pusher may push.
    comparison: what was compared and decided, as JSON.
  """
  blessing.set_int_custom_property(BLESSED_KEY, int(blessed))
  marker = (constants.BLESSED_FILE_NAME if blessed
            else constants.NOT_BLESSED_FILE_NAME)
  tf.io.gfile.makedirs(blessing.uri)
  with tf.io.gfile.GFile(os.path.join(blessing.uri, marker), "w") as out:
    out.write("")
  with tf.io.gfile.GFile(os.path.join(blessing.uri, COMPARISON_FILE),
                         "w") as out:
    json.dump(comparison, out, indent=1)


def read(blessing_uri: str):
  """The `comparison.json` in a blessing, or None if it has none."""
  path = os.path.join(blessing_uri, COMPARISON_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as record:
    return json.load(record)
