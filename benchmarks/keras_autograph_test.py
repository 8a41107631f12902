"""Tests for the Keras-under-AutoGraph benchmark."""

import subprocess
import sys
import textwrap

from benchmarks import keras_autograph


def _run(seconds, first_epoch, recall):
  return {"family": "two_tower", "hparams": {}, "seed": 0,
          "trainer_seconds": seconds, "epochs_trained": 3,
          "learning_curve": [{"epoch": 1, "seconds": first_epoch}],
          "metrics": {"recall_at_10": recall, "recall_at_50": 0.4,
                      "ndcg_at_10": 0.08, "recall_at_100": 0.5}}


def test_rows_pair_each_run_with_its_ratio_and_whether_metrics_agree():
  rows = keras_autograph.compare({
      keras_autograph.EXEMPT: [_run(30.0, 12.0, 0.16),
                               _run(30.0, 12.0, 0.16)],
      keras_autograph.CONVERTED: [_run(60.0, 40.0, 0.16000001),
                                  _run(60.0, 40.0, 0.17)]})
  assert [row["exempt_over_converted"] for row in rows] == [0.5, 0.5]
  assert [row["same_metrics"] for row in rows] == [True, False]
  assert rows[0][keras_autograph.CONVERTED]["first_epoch_seconds"] == 40.0
  assert rows[0][keras_autograph.EXEMPT]["metrics"] == {
      "recall_at_10": 0.16, "recall_at_50": 0.4, "ndcg_at_10": 0.08}


def test_the_baseline_process_converts_keras_2_again():
  script = textwrap.dedent("""
      import transforms, tensorflow, tf_keras
      from tensorflow.python.autograph.impl import conversion
      from benchmarks import keras_autograph
      before = conversion.is_allowlisted(tf_keras.Model.train_step)
      keras_autograph.take_back_the_exemption()
      print(before, conversion.is_allowlisted(tf_keras.Model.train_step))
      """)
  assert subprocess.run([sys.executable, "-c", script], check=True,
                        capture_output=True, text=True
                        ).stdout.split() == ["True", "False"]
