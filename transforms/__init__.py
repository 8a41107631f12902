"""Feature preprocessing (tf.Transform) shared by every model family.

This package is the lowest floor that loads TensorFlow, so it is the one
place that selects Keras 2 (`tf-keras`), which TFRS needs: TensorFlow reads
`TF_USE_LEGACY_KERAS` once, when it is first imported. Every package above
imports this one in its `__init__` before anything can load TensorFlow, so
it is also where object storage (s3://) is registered with TensorFlow
(`transforms.filesystems`).
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from transforms import filesystems  # noqa: E402  pylint: disable=wrong-import-position

filesystems.register_when_tensorflow_loads()
