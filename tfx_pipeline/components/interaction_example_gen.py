"""InteractionExampleGen: contract files -> time-split tf.Examples.

It validates the dataset directory against the input contract (a bad file
fails the run here, naming file, row and field, before anything trains),
builds one example per positive interaction with the user's history, and
splits each user's newest positives into eval. The standard ExampleGens can
only split by hash or by file pattern, neither of which is a per-user time
split, hence this component.

The whole log is held in memory on one worker, which is fine up to tens of
millions of interactions; beyond that, pre-split with a Beam job and use
ImportExampleGen with one file pattern per split.
"""

import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from data import contract
from data import examples as examples_lib

SPLITS = ("train", "eval")


def _feature(value) -> tf.train.Feature:
  values = value if isinstance(value, list) else [value]
  if isinstance(value, float):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  if isinstance(value, int):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[str(v).encode("utf-8") for v in values]))


def to_tf_example(row: dict) -> tf.train.Example:
  """Serializes one raw feature dict."""
  return tf.train.Example(features=tf.train.Features(
      feature={name: _feature(value) for name, value in row.items()}))


def write_split(rows: list[dict], split_dir: str) -> None:
  tf.io.gfile.makedirs(split_dir)
  path = os.path.join(split_dir, "data.tfrecord.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for row in rows:
      writer.write(to_tf_example(row).SerializeToString())


@tfx.dsl.components.component
def InteractionExampleGen(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    dataset_dir: tfx.dsl.components.Parameter[str],
    eval_holdout: tfx.dsl.components.Parameter[int] = 1,
    history_length: tfx.dsl.components.Parameter[int] = 50,
    input_fingerprint: tfx.dsl.components.Parameter[str] = "",
    ctr_negatives: tfx.dsl.components.Parameter[int] = 0,
    negative_seed: tfx.dsl.components.Parameter[int] = 0,
    split: tfx.dsl.components.Parameter[str] = examples_lib.LEAVE_LAST_OUT,
    temporal_cut_quantile: tfx.dsl.components.Parameter[float] = 0.9,
) -> None:
  """Writes the train and eval splits of a contract dataset directory.

  Args:
    examples: output Examples artifact with splits `train` and `eval`.
    dataset_dir: a directory laid out as the input contract describes.
    eval_holdout: each user's newest positives held out for eval.
    history_length: most recent history items kept per example.
    input_fingerprint: changes whenever the input files change, so that the
      MLMD cache is not reused for new data.
    ctr_negatives: sampled label-0 rows per positive, for CTR ranking
      families; 0 writes positives only.
    negative_seed: seed of that sampling.
    split: the split rule, `leave_last_out` or `temporal`.
    temporal_cut_quantile: under `temporal`, where train ends, as a quantile
      of the positives' timestamps.
  """
  del input_fingerprint  # Only part of the cache key.
  dataset = contract.load_dataset(dataset_dir)
  rows = examples_lib.build_rows(dataset, eval_holdout=eval_holdout,
                                 history_length=history_length,
                                 ctr_negatives=ctr_negatives,
                                 negative_seed=negative_seed, split=split,
                                 temporal_cut_quantile=temporal_cut_quantile)
  examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
  examples_utils.set_payload_format(
      examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  split_rows = {"train": rows.train, "eval": rows.eval}
  for split in SPLITS:
    write_split(split_rows[split],
                artifact_utils.get_split_uri([examples], split))
  print(f"InteractionExampleGen: {len(rows.train)} train and {len(rows.eval)} "
        f"eval examples from {dataset_dir}", flush=True)
