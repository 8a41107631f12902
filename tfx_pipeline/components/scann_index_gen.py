"""ScannIndexGen: the Trainer's model plus a ScaNN index over every item.

Runs the Beam job of `tfx_pipeline.index_builder` with the pipeline's
`beam_pipeline_args`, so the embedding step runs on the DirectRunner locally
and scales out on Flink, Spark or Dataflow when the pipeline is configured for
them. The index itself is built on one worker.

Items come from the `train` split only: the model's item vocabulary is learned
from it, so an item seen only in `eval` would embed as out-of-vocabulary.

Outputs, both SavedModels under `<uri>/Format-Serving/` (where Evaluator,
Pusher and `tfx.utils.path_utils` look):

- `indexed_model`: the input model unchanged plus `assets.extra/scann_index/`;
  stock TF Serving serves it as before and the retrieval server in `serving/`
  loads its index. This is what the Pusher pushes.
- `scann_layer_model`: the query tower with a TFRS ScaNN layer, for a TF
  Serving built with the ScaNN ops; load it after `import scann`.
"""

import os

import apache_beam as beam
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import path_utils

from serving import scann_index
from tfx_pipeline import index_builder

INDEXED_SPLIT = "train"
_DEFAULT_PARAMS = scann_index.ScannParams()


@tfx.dsl.components.component(use_beam=True)
def ScannIndexGen(  # pylint: disable=invalid-name
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Examples],
    indexed_model: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Model],
    scann_layer_model: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Model],
    num_leaves: tfx.dsl.components.Parameter[int] = _DEFAULT_PARAMS.num_leaves,
    num_leaves_to_search: tfx.dsl.components.Parameter[int] = (
        _DEFAULT_PARAMS.num_leaves_to_search),
    training_sample_size: tfx.dsl.components.Parameter[int] = (
        _DEFAULT_PARAMS.training_sample_size),
    dimensions_per_block: tfx.dsl.components.Parameter[int] = (
        _DEFAULT_PARAMS.dimensions_per_block),
    anisotropic_quantization_threshold: tfx.dsl.components.Parameter[float] = (
        _DEFAULT_PARAMS.anisotropic_quantization_threshold),
    reorder_k: tfx.dsl.components.Parameter[int] = _DEFAULT_PARAMS.reorder_k,
    default_k: tfx.dsl.components.Parameter[int] = _DEFAULT_PARAMS.default_k,
    neighbors_per_vector: tfx.dsl.components.Parameter[int] = (
        _DEFAULT_PARAMS.neighbors_per_vector),
    merge_rule: tfx.dsl.components.Parameter[str] = _DEFAULT_PARAMS.merge_rule,
    batch_size: tfx.dsl.components.Parameter[int] = (
        index_builder.DEFAULT_BATCH_SIZE),
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[
        beam.Pipeline] = None,
) -> None:
  """Embeds the train split's items and writes the indexed model.

  Args:
    model: the Trainer's model; needs `candidate_embedding` and
      `query_embedding` signatures.
    examples: raw examples; items are read from the `train` split.
    indexed_model: the model plus its ScaNN index.
    scann_layer_model: the query tower with a TFRS ScaNN layer.
    num_leaves: see `serving.scann_index.ScannParams`.
    num_leaves_to_search: see `serving.scann_index.ScannParams`.
    training_sample_size: see `serving.scann_index.ScannParams`.
    dimensions_per_block: see `serving.scann_index.ScannParams`.
    anisotropic_quantization_threshold: see
      `serving.scann_index.ScannParams`.
    reorder_k: see `serving.scann_index.ScannParams`.
    default_k: see `serving.scann_index.ScannParams`.
    neighbors_per_vector: for multi-vector models, see
      `serving.scann_index.ScannParams`.
    merge_rule: for multi-vector models, "max" or "round_robin"; see
      `serving.multi_vector`.
    batch_size: most items per `candidate_embedding` call.
    beam_pipeline: made by TFX from the pipeline's `beam_pipeline_args`.
  """
  split_dir = artifact_utils.get_split_uri([examples], INDEXED_SPLIT)
  job = index_builder.IndexJob(
      model_dir=path_utils.serving_model_path(model.uri),
      examples_pattern=os.path.join(split_dir, "*"),
      indexed_model_dir=path_utils.serving_model_dir(indexed_model.uri),
      scann_layer_model_dir=path_utils.serving_model_dir(scann_layer_model.uri),
      params=scann_index.ScannParams(
          num_leaves=num_leaves,
          num_leaves_to_search=num_leaves_to_search,
          training_sample_size=training_sample_size,
          dimensions_per_block=dimensions_per_block,
          anisotropic_quantization_threshold=anisotropic_quantization_threshold,
          reorder_k=reorder_k,
          default_k=default_k,
          neighbors_per_vector=neighbors_per_vector,
          merge_rule=merge_rule),
      batch_size=batch_size)
  result = index_builder.run(beam_pipeline, job)
  print(f"ScannIndexGen: {index_builder.items_embedded(result)} items embedded "
        f"and indexed into {job.indexed_model_dir}", flush=True)
