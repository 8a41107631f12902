"""Feature preprocessing (tf.Transform) shared by every model family.

This package is the lowest floor that loads TensorFlow, so it is the one
place that selects Keras 2 (`tf-keras`), which TFRS needs: TensorFlow reads
`TF_USE_LEGACY_KERAS` once, when it is first imported (`legacy_keras`).
Every package above imports this one in its `__init__` before anything can
load TensorFlow, so it is also where object storage (s3://) is registered
with TensorFlow (`filesystems`), and where Beam's pickler stops flushing
every logger's cache on each call (`beam_pickling`).
"""
from transforms import beam_pickling
from transforms import filesystems
from transforms import legacy_keras

legacy_keras.select()
filesystems.register_when_tensorflow_loads()
beam_pickling.install()
