"""Tests for the Trainer's child process's imports."""

import json
import os
import subprocess
import sys

# The child's own imports, then every family's train function, as a child
# that trains that family loads them; prints what of TFX's extensions
# came with them.
_CHILD_IMPORTS = """
import json, sys
from tfx_pipeline.components import trainer_child
from models import families
from models import trainer
for spec in families.FAMILIES.values():
  families.load(spec.train)
print(json.dumps(sorted(name for name in sys.modules
                        if name == "tfx.v1"
                        or name.startswith("google.cloud.aiplatform"))))
"""


def test_a_trainer_child_loads_no_tfx_extension():
  # `tfx.v1` loads every TFX extension, Vertex AI's client among them:
  # about a third of a child's imports, paid by every Trainer and baseline
  # of every run. A `run_fn` module that imports it undoes `trainer_child`.
  output = subprocess.run(
      [sys.executable, "-c", _CHILD_IMPORTS], check=True, capture_output=True,
      text=True, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}).stdout
  assert json.loads(output.splitlines()[-1]) == []
