"""Test-wide setup: Keras 2 must be selected before TensorFlow is imported;
the shared pipeline-run fixtures come from `tests.pipeline_fixtures`."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["tests.pipeline_fixtures"]
