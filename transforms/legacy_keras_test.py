"""Tests for `transforms.legacy_keras`."""

import subprocess
import sys
import textwrap

import tensorflow as tf
import tensorflow_recommenders as tfrs
from tensorflow.python.autograph.impl import conversion
import tf_keras

import transforms  # noqa: F401  pylint: disable=unused-import


def _own_function(x):
  return x


def test_autograph_leaves_keras_2_code_as_it_leaves_keras():
  assert tf.keras.Model is tf_keras.Model
  assert conversion.is_allowlisted(tf_keras.Model.train_step)
  assert conversion.is_allowlisted(tf_keras.optimizers.Adam.apply_gradients)
  # Models written on top of Keras are still converted.
  assert not conversion.is_allowlisted(tfrs.models.Model.train_step)
  assert not conversion.is_allowlisted(_own_function)


def _keras_rules_after(imports: str) -> str:
  """The AutoGraph rules naming `tf_keras`, in a process running `imports`."""
  script = textwrap.dedent(f"""
      {imports}
      from tensorflow.python.autograph.core import config
      print([str(rule) for rule in config.CONVERSION_RULES
             if rule.matches("tf_keras")])
      """)
  return subprocess.run([sys.executable, "-c", script], check=True,
                        capture_output=True, text=True).stdout.strip()


def test_the_exemption_is_made_once_whichever_loads_first():
  exempt = "['DoNotConvert rule for tf_keras']"
  assert _keras_rules_after("import transforms; import tensorflow") == exempt
  assert _keras_rules_after("import tensorflow; import transforms; "
                            "import transforms.legacy_keras as k; k.select()"
                            ) == exempt
