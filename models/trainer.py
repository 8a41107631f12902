"""The TFX Trainer entry point: `run_fn` dispatches on the model family.

The pipeline passes `custom_config = {"model_family": ..., "hparams": {...},
"label": ..., "seed": ...}` (keys in `models.families`). Neural retrieval
families share `models.retrieval.trainer`; every other family names its own
train function in its `families.FamilySpec`.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer import fn_args_utils

from models import distribution
from models import families
from models import learning_curve
from models import train_inputs

MODEL_INFO_FILE = "model_info.json"
# The model info's record of the validation score the Trainer picked its
# epoch or setting by, and of every metric measured there:
# {"metric": ..., "value": ..., "metrics": {...} or None}, or None.
VALIDATION_KEY = "validation"


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the model family named in `fn_args.custom_config`."""
  custom_config = fn_args.custom_config or {}
  # The pipeline always names the family (`tfx_pipeline.pipeline`).
  family = custom_config[families.FAMILY_KEY]
  spec = families.get(family)
  tft_output = tft.TFTransformOutput(fn_args.transform_output)
  hparams = custom_config.get(families.HPARAMS_KEY, {})
  families.load(spec.train)(fn_args, tft_output, hparams, spec)
  if not distribution.is_chief(custom_config):
    return  # The chief's record stands for the job's.
  # Beside Format-Serving/, in the Model artifact, so that it is not pushed.
  model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
  with tf.io.gfile.GFile(os.path.join(model_uri, MODEL_INFO_FILE), "w") as out:
    json.dump({families.FAMILY_KEY: family, families.HPARAMS_KEY: hparams,
               families.LABEL_KEY: custom_config.get(families.LABEL_KEY, family),
               families.SEED_KEY: train_inputs.run_seed(fn_args),
               VALIDATION_KEY: _validation(fn_args.model_run_dir)}, out)


def _validation(model_run_dir: str) -> dict | None:
  """The validation scores of the Trainer's kept epoch or setting, if any:
  the one it picked by and, where it measured them, every other."""
  curve = learning_curve.read(model_run_dir)
  if curve is None:
    return None
  best = curve.best_point
  return {"metric": curve.metric, "value": best.validation,
          "metrics": best.metrics}


def read_model_info(model_uri: str) -> dict:
  """What `run_fn` recorded about a Model artifact; {} for other models."""
  path = os.path.join(model_uri, MODEL_INFO_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as info:
    return json.load(info)
