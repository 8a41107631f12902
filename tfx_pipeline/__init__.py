"""TFX recommendation pipeline package."""
import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)
