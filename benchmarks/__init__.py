"""Benchmarks that measure the product on real data, run as
`python -m benchmarks.<name>` (or `vrec benchmark <name>`)."""
import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)
