"""The Evaluator's baseline without a resolver: the latest model pushed.

On open-source Kubeflow Pipelines the Evaluator's baseline cannot come from a
`tfx.dsl.Resolver`: TFX compiles one into resolver tasks, which the backend's
Argo compiler refuses. `LatestPushedModel` is an ordinary container task that
finds the same model, the latest blessed one, in the serving directory the
Pusher writes:

- The Pusher copies a model to `<push_dir>/<version>/` only when its blessing
  says so (the Evaluator's, or BaselineGate's with `gate.baseline`), so every
  version there was blessed, and the newest is the model being served. The
  version is the push's Unix time, and `saved_model.pb` is copied last, so
  the highest numbered version holding it is the latest complete push.
- The directory is a path or bucket prefix (`s3://`, `gs://`) that every task
  can already read, so the lookup needs nothing the cluster does not have.
  The cluster's ML Metadata gRPC service also knows the blessings, but a
  lookup there needs that service's address, which is deployment
  configuration the spec does not carry, and no gRPC server ships with the
  `ml-metadata` package, so the test harness could not check such a lookup
  against its S3 server.
- The model is copied into this task's own artifact (`Format-Serving/`, where
  the Evaluator looks), less its `assets.extra/` (the ScaNN index, which TFMA
  never reads): the run records the baseline it was gated against even after
  the serving directory moves on.

Unlike the resolver, this baseline is scoped to the serving directory, not to
the pipeline: pipelines that push to the same directory gate against each
other's models, as they already replace each other's served model.

A task always produces its output artifact, so on a first run (nothing pushed
yet) the artifact says `found` 0 and holds no model; `PushedBaselineEvaluator`
then drops it, and the Evaluator runs without a baseline, as it does when a
resolver finds nothing.
"""

import re
from typing import Optional

from tfx import v1 as tfx
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import path_utils

# Custom properties of the `model` output.
FOUND_KEY = "found"
PUSHED_DESTINATION_KEY = "pushed_destination"
PUSHED_VERSION_KEY = "pushed_version"
_SAVED_MODEL_FILE = "saved_model.pb"
_NOT_COPIED = (r"/assets\.extra(/|$)",)
_VERSION = re.compile(r"^\d+$")


def latest_push(push_dir: str) -> Optional[str]:
  """The newest complete version directory under `push_dir`, if any."""
  if not fileio.isdir(push_dir):
    return None
  versions = sorted((int(name.rstrip("/")) for name in fileio.listdir(push_dir)
                     if _VERSION.match(name.rstrip("/"))), reverse=True)
  for version in versions:
    directory = f"{push_dir.rstrip('/')}/{version}"
    if fileio.exists(f"{directory}/{_SAVED_MODEL_FILE}"):
      return directory
  return None


def has_model(model: tfx.types.standard_artifacts.Model) -> bool:
  """Whether a `LatestPushedModel` output holds a pushed model."""
  return model.get_int_custom_property(FOUND_KEY) == 1


@tfx.dsl.components.component
def LatestPushedModel(  # pylint: disable=invalid-name
    model: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.Model],
    push_dir: tfx.dsl.components.Parameter[str],
) -> None:
  """Copies the latest model pushed to `push_dir` into `model`.

  Args:
    model: the baseline; `found` 1 with `pushed_destination` and
      `pushed_version` naming the push, or `found` 0 and empty.
    push_dir: the Pusher's `base_directory`.
  """
  pushed = latest_push(push_dir)
  if pushed is None:
    model.set_int_custom_property(FOUND_KEY, 0)
    print(f"LatestPushedModel: nothing pushed to {push_dir} yet; the "
          "Evaluator runs without a baseline", flush=True)
    return
  io_utils.copy_dir(pushed, path_utils.serving_model_dir(model.uri),
                    deny_regex_patterns=_NOT_COPIED)
  model.set_int_custom_property(FOUND_KEY, 1)
  model.set_string_custom_property(PUSHED_DESTINATION_KEY, pushed)
  model.set_string_custom_property(PUSHED_VERSION_KEY,
                                   pushed.rsplit("/", 1)[1])
  print(f"LatestPushedModel: baseline {pushed}", flush=True)


class EvaluatorExecutor(evaluator_executor.Executor):
  """TFX's Evaluator executor, given no baseline when none was found."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY, [])
    super().Do({**input_dict, standard_component_specs.BASELINE_MODEL_KEY: [
        baseline for baseline in baselines if has_model(baseline)]},
               output_dict, exec_properties)


class PushedBaselineEvaluator(tfx.components.Evaluator):
  """The Evaluator, for a `baseline_model` from `LatestPushedModel`."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluatorExecutor)
