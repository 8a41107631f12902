"""Feature preprocessing (tf.Transform) shared by every model family.

This package is the lowest floor that loads TensorFlow, so it is the one
place that selects Keras 2 (`tf-keras`), which TFRS needs: TensorFlow reads
`TF_USE_LEGACY_KERAS` once, when it is first imported. Every package above
imports this one in its `__init__` before anything can load TensorFlow.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
