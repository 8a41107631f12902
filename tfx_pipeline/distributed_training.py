"""How the pipeline asks for the Trainer's workers and GPUs (docs/scaling.md).

`config.training` names them; this module turns them into what each target
runs:

- every target: the Trainer's custom_config names the `tf.distribute`
  strategy (`strategy`, read by `models.distribution`): several workers
  train as one `MultiWorkerMirroredStrategy` job, one worker with several
  GPUs under `MirroredStrategy`, anything else without a strategy;
- Vertex AI (`vertex`): a Trainer that trains on more than this pipeline
  task's machine is TFX's Vertex AI Trainer (`VertexTrainer`), whose task
  starts a Vertex AI custom job with the worker pools of
  `vertex_custom_config`: pool 0 the chief, pool 1 the other workers, each
  a `machine_type` with `gpus_per_worker` GPUs, running this pipeline's
  image. Vertex AI sets each replica's `TF_CONFIG`;
- open-source Kubeflow Pipelines (`kfp`): one worker, its GPUs asked of the
  Trainer task's container (`gpu_resources`). More workers need a
  multi-worker job that KFP's tasks do not start: refused, with the way out.
"""

from __future__ import annotations

from tfx.extensions.google_cloud_ai_platform import constants as vertex
from tfx.extensions.google_cloud_ai_platform.trainer import component
from tfx.extensions.google_cloud_ai_platform.trainer import executor

from models import distribution
from models import families
from tfx_pipeline import config as config_lib

VertexTrainer = component.Trainer
# Kubernetes' name of an NVIDIA GPU, as KFP's container resources take it.
KUBERNETES_GPU = "nvidia.com/gpu"


def strategy(training: config_lib.TrainingConfig) -> str:
  """The strategy the Trainer runs under (`models.distribution`)."""
  if training.workers > 1:
    return distribution.MULTI_WORKER
  if training.gpus_per_worker > 1:
    return distribution.MIRRORED
  return distribution.NONE


def strategy_config(training: config_lib.TrainingConfig) -> dict:
  """The Trainer's custom_config entry naming `strategy`; none without one
  (the Trainer's default)."""
  name = strategy(training)
  return {} if name == distribution.NONE else {families.DISTRIBUTION_KEY: name}


def on_vertex(training: config_lib.TrainingConfig) -> bool:
  """Whether a Vertex AI pipeline trains in a custom job of its own: for
  more than one worker, or for GPUs."""
  return training.workers > 1 or training.gpus_per_worker > 0


def _pool(training: config_lib.TrainingConfig, image: str,
          replicas: int) -> dict:
  machine = {"machine_type": training.machine_type}
  if training.gpus_per_worker:
    machine.update(accelerator_type=training.accelerator_type,
                   accelerator_count=training.gpus_per_worker)
  # TFX's Vertex AI runner sets the container's command (its executor).
  return {"machine_spec": machine, "replica_count": replicas,
          "container_spec": {"image_uri": image}}


def worker_pool_specs(training: config_lib.TrainingConfig,
                      image: str) -> list[dict]:
  """The custom job's worker pools: the chief, then the other workers."""
  pools = [_pool(training, image, 1)]
  if training.workers > 1:
    pools.append(_pool(training, image, training.workers - 1))
  return pools


def vertex_custom_config(training: config_lib.TrainingConfig,
                         image: str) -> dict:
  """What `VertexTrainer` reads from its custom_config to start the job."""
  return {
      vertex.ENABLE_VERTEX_KEY: True,
      vertex.VERTEX_REGION_KEY: training.vertex_region,
      executor.TRAINING_ARGS_KEY: {
          "project": training.vertex_project,
          "job_spec": {"worker_pool_specs": worker_pool_specs(training,
                                                              image)}},
  }


def gpu_resources(training: config_lib.TrainingConfig) -> dict | None:
  """The KFP container resources of a one-worker Trainer with GPUs.

  Raises:
    ValueError: for more than one worker.
  """
  if training.workers > 1:
    raise ValueError(
        f"training.workers={training.workers}: open-source Kubeflow "
        "Pipelines runs the Trainer as one task; compile for the vertex "
        "target, or train on one worker's GPUs (training.gpus_per_worker)")
  if not training.gpus_per_worker:
    return None
  return {"accelerator": {"type": KUBERNETES_GPU,
                          "count": str(training.gpus_per_worker)}}
