"""Keras 2 (`tf-keras`) for TensorFlow 2.16, as TFRS needs it, at Keras 2's speed.

TensorFlow picks its Keras when it is first imported: `TF_USE_LEGACY_KERAS=1`
selects Keras 2, which since TF 2.16 is the `tf_keras` package. AutoGraph
never converts Keras's own code (its conversion rules exempt the module
`keras`) but does not know the new name: with `tf_keras`, every `tf.function`
that trains or exports a model also converted Keras's training step, loss,
optimizer and functional-model code from source, which took about two thirds
of a small model's first `fit`. `select` restores the exemption Keras 2 had
before it was renamed. Code outside Keras (TFRS's and this project's models)
is converted as before.
"""

from __future__ import annotations

import os
import types

from transforms import after_import

KERAS_2_PACKAGE = "tf_keras"
_AUTOGRAPH_CONFIG = "tensorflow.python.autograph.core.config"


def select() -> None:
  """Selects Keras 2 unless the environment chose, and, once TensorFlow
  loads, exempts `tf_keras` from AutoGraph as `keras` is exempt."""
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  after_import.call_after_import("tensorflow", _exempt_from_autograph)


def exempts_keras_2(rule: object) -> bool:
  """Whether an AutoGraph conversion rule leaves `tf_keras` unconverted."""
  from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  return (isinstance(rule, config.DoNotConvert)
          and rule.matches(KERAS_2_PACKAGE))


def _exempt_from_autograph(_: types.ModuleType) -> None:
  from tensorflow.python.autograph.core import config  # pylint: disable=g-import-not-at-top
  if not any(map(exempts_keras_2, config.CONVERSION_RULES)):
    config.CONVERSION_RULES = (config.DoNotConvert(KERAS_2_PACKAGE),
                               *config.CONVERSION_RULES)
