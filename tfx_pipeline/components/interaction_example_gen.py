"""InteractionExampleGen: contract files -> time-split tf.Examples, a Beam job.

It validates the dataset directory against the input contract (a bad file
fails the run here, naming file, row and field, before anything trains),
builds one example per positive interaction with the user's history, and
splits by time per user or globally (`data.examples`). The standard
ExampleGens can only split by hash or by file pattern, neither of which is a
time split, hence this component.

The work runs as the Beam job of `interaction_example_beam`, with the
pipeline's `beam_pipeline_args`: on the DirectRunner locally, on Flink, Spark
or Dataflow when the pipeline is configured for them. No worker holds the
log: a reader holds a chunk of rows, a row builder one user's history.

Outputs, in the Examples artifact: `Split-train/` and `Split-eval/` of
sharded gzipped TFRecord files, and `example_gen_summary.json` (the temporal
cut, eval users before and after `eval_max_users` sampling). The artifact's
custom property `eval_max_users` says whether sampling was asked for.
"""

import os

import apache_beam as beam
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from data import user_sequences
from tfx_pipeline.components import interaction_example_beam

SPLITS = (user_sequences.TRAIN, user_sequences.EVAL)
EVAL_MAX_USERS_PROPERTY = "eval_max_users"


@tfx.dsl.components.component(use_beam=True)
def InteractionExampleGen(  # pylint: disable=invalid-name
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    dataset_dir: tfx.dsl.components.Parameter[str],
    eval_holdout: tfx.dsl.components.Parameter[int] = 1,
    history_length: tfx.dsl.components.Parameter[int] = 50,
    input_fingerprint: tfx.dsl.components.Parameter[str] = "",
    ctr_negatives: tfx.dsl.components.Parameter[int] = 0,
    negative_seed: tfx.dsl.components.Parameter[int] = 0,
    split: tfx.dsl.components.Parameter[str] = user_sequences.LEAVE_LAST_OUT,
    temporal_cut_quantile: tfx.dsl.components.Parameter[float] = 0.9,
    eval_max_users: tfx.dsl.components.Parameter[int] = 0,
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[
        beam.Pipeline] = None,
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
    negative_seed: seed of that sampling and of the eval user sample.
    split: the split rule, `leave_last_out` or `temporal`.
    temporal_cut_quantile: under `temporal`, where train ends, as a quantile
      of the positives' timestamps.
    eval_max_users: if > 0, the eval split keeps a seeded sample of this many
      users (for very large logs); train is unchanged.
    beam_pipeline: made by TFX from the pipeline's `beam_pipeline_args`.
  """
  del input_fingerprint  # Only part of the cache key.
  examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
  examples_utils.set_payload_format(
      examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
  examples.set_int_custom_property(EVAL_MAX_USERS_PROPERTY, eval_max_users)
  job = interaction_example_beam.ExampleGenJob(
      dataset_dir=dataset_dir,
      split_dirs={name: artifact_utils.get_split_uri([examples], name)
                  for name in SPLITS},
      summary_path=os.path.join(examples.uri,
                                interaction_example_beam.SUMMARY_FILE),
      split=split, eval_holdout=eval_holdout,
      temporal_cut_quantile=temporal_cut_quantile,
      history_length=history_length, ctr_negatives=ctr_negatives,
      negative_seed=negative_seed, eval_max_users=eval_max_users)
  interaction_example_beam.run(beam_pipeline, job)
  print(f"InteractionExampleGen: wrote {examples.uri} from {dataset_dir}",
        flush=True)
