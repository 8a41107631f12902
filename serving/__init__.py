"""Serving helpers for models pushed by the pipeline."""
import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)
