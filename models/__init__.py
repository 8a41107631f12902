"""Model families trained by the pipeline's Trainer."""
import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)
