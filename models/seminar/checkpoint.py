"""The PSU's hand-over to the fine-tuning Trainer: a checkpoint and settings.

`seminar_psu` writes the pretraining search unit's encoder and target
attention as a `tf.train.Checkpoint` under its serving-model dir, beside the
settings that shaped them (JSON); `seminar` reads both from
`fn_args.base_model`, takes the settings as its own hyperparameters and
restores the weights into its retriever.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import tensorflow as tf

from models.seminar import model as seminar
from models.seminar import psu as seminar_psu

PSU_CHECKPOINT = "psu"
PSU_SETTINGS_FILE = "psu_settings.json"


def save_psu(pretrainer: seminar_psu.SeminarPretrainer,
             settings: Mapping[str, object], export_dir: str) -> None:
  """Writes the PSU's encoder and target attention, and what built them."""
  tf.io.gfile.makedirs(export_dir)
  tf.train.Checkpoint(encoder=pretrainer.encoder,
                      attention=pretrainer.attention).write(
                          os.path.join(export_dir, PSU_CHECKPOINT))
  with tf.io.gfile.GFile(os.path.join(export_dir, PSU_SETTINGS_FILE),
                         "w") as out:
    json.dump(dict(settings), out)


def read_psu_settings(export_dir: str) -> dict:
  """The settings `save_psu` wrote."""
  with tf.io.gfile.GFile(os.path.join(export_dir, PSU_SETTINGS_FILE)) as file:
    return json.load(file)


def restore_psu(export_dir: str, pretrainer: seminar_psu.SeminarPretrainer,
                retriever: seminar.SeminarRetriever) -> None:
  """Loads `save_psu`'s weights into `pretrainer`, then into `retriever`."""
  status = tf.train.Checkpoint(
      encoder=pretrainer.encoder, attention=pretrainer.attention).read(
          os.path.join(export_dir, PSU_CHECKPOINT))
  # The checkpoint restores the PSU's variables as restore_pretrained
  # creates them, before it copies them.
  retriever.restore_pretrained(pretrainer)
  status.assert_existing_objects_matched()


def inherit_psu_settings(hparams: Mapping[str, object],
                         settings: Mapping[str, object]) -> dict:
  """`hparams` completed with the PSU's settings.

  Raises:
    ValueError: if `hparams` sets one of them to another value.
  """
  for name, value in settings.items():
    if name in hparams and hparams[name] != value:
      raise ValueError(
          f"SEMINAR hyperparameter {name}={hparams[name]!r} differs from the "
          f"PSU's {value!r}; set it for both (--pretrain-hparam)")
  return {**hparams, **settings}
