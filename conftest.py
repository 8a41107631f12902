"""Test-wide setup: Keras 2 is selected (by importing `transforms`) before any
test module can load TensorFlow; the shared pipeline-run fixtures come from
`tests.pipeline_fixtures`."""

import os

import transforms  # noqa: F401  (selects Keras 2 before TensorFlow loads)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["tests.pipeline_fixtures"]
