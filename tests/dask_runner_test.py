"""The pipeline's Beam steps on Beam's Dask runner, on a dask.distributed cluster.

Issue 20 asked to try one real distributed engine installable here: Beam
2.59's `DaskRunner` on a `LocalCluster` of two worker processes. It runs
none of the pipeline's Beam steps. Each failure is asserted here with its
known error (and, where it does not depend on task order, the frame that
raises it), so that this file fails, naming the step, the day a step starts
to run:

- Through the pipeline's `beam_args`, as Flink or Spark are chosen, the
  runner cannot start: Beam does not know the short name `DaskRunner`, and
  under its qualified name `DaskRunner` hands every Beam option (`runner`
  included) to `distributed.Client`, which refuses them.
- Handed the runner as an object, as Beam's own Dask tests do, each step
  fails on something the runner lacks. It translates Create, ParDo,
  GroupByKey and a Flatten of several inputs, and nothing else: side inputs
  reach a DoFn as unresolved placeholders (Beam's own file sinks use side
  inputs), tagged outputs are not split, `DoFn.setup` is never called, a
  Read yields no data, and a Flatten of one input, which TFX-BSL's readers
  apply per file pattern, cannot be rewritten. Its GroupByKey is right only
  when the workers share a hash seed, which the cluster here sets.

No step fails on a fault of our own DoFns: when ExampleGen first fails in
our `global_stats`, that function was handed the runner's placeholder in
place of a side input's value. The steps re-run here take the inputs and
execution properties that the shared `sample_runs` pipeline run recorded in
ML-Metadata.
"""

from __future__ import annotations

import collections
import os
from typing import NamedTuple

import apache_beam as beam
import ml_metadata as mlmd
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.components.base import base_beam_executor
from tfx.orchestration import data_types_utils
from tfx.types import artifact_utils

from tests import pipeline_fixtures
from tests import prerequisites
from tfx_pipeline import config as config_lib
from tfx_pipeline import local_runner
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.report import run_summary

DASK_RUNNER_PATH = "apache_beam.runners.dask.dask_runner.DaskRunner"
WORKERS = 2
# Enough users for a pipeline to reach its first Beam step.
SAMPLE_USERS = 10
_FIRST_BEAM_STEP = "InteractionExampleGen"
# Set in a worker's environment before its interpreter starts.
_HASH_SEED_CONFIG = "distributed.nanny.pre-spawn-environ.PYTHONHASHSEED"
_DASK_OVERRIDES = "apache_beam/runners/dask/overrides.py"
_DASK_TRANSLATIONS = "apache_beam/runners/dask/transform_evaluator.py"
_THIS_FILE = "tests/dask_runner_test.py"
_NOT_ITERABLE = "'PCollection' object is not iterable"
_NO_BAG = "'NoneType' object has no attribute 'map'"


class KnownFailure(NamedTuple):
  """How a pipeline fails on the runner, as far as this file knows.

  Attributes:
    error: the exception's type, or a base of the types it may have.
    fragment: a part of its message.
    frames: (file path suffix, function) of the innermost frame, where the
      run gives up; empty where the Dask scheduler's task order decides
      which of several places meets the fault first.
  """
  error: type
  fragment: str
  frames: tuple[tuple[str, str], ...]


# A DoFn gets the side input's placeholder instead of its value, and fails on
# its first use: in Beam's code (CombineGlobally's default for an empty input,
# a file sink's finalisation) or in ours (`global_stats`), as tasks happen to
# run.
_SIDE_INPUT_FAILURE = KnownFailure(Exception, "'ArgumentPlaceholder'", ())
# TFX-BSL's RawRecordBeamSource flattens one PCollection per file pattern;
# the runner's Flatten override wants a tuple of them.
_FLATTEN_OF_ONE_FAILURE = KnownFailure(TypeError, _NOT_ITERABLE,
                                       ((_DASK_OVERRIDES, "expand"),))
# A Read becomes no Dask bag at all: the next ParDo has nothing to map over.
_READ_FAILURE = KnownFailure(AttributeError, _NO_BAG,
                             ((_DASK_TRANSLATIONS, "apply"),))

# Each Beam step's first failure. What each would meet next, as the tests of
# UNSUPPORTED show on small pipelines: ExampleGen's tagged split outputs and
# Beam's WriteToTFRecord; the reads of StatisticsGen, Transform and the
# Evaluator; ScannIndexGen's EmbedItemsFn, which loads its model in `setup`.
# One Beam step per distinct failure: Transform and the Evaluator read
# through the same TFX-BSL Flatten as StatisticsGen and fail the same way
# (benchmarks/README.md), so they are left out to keep this file's CI cost
# down.
KNOWN_STEP_FAILURES = {
    "InteractionExampleGen": _SIDE_INPUT_FAILURE,
    "StatisticsGen": _FLATTEN_OF_ONE_FAILURE,
    "ScannIndexGen": _READ_FAILURE,
}


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
  """A dask.distributed cluster of `WORKERS` worker processes."""
  dask = prerequisites.module("dask")
  distributed = prerequisites.module("distributed")
  # The runner's GroupByKey is a Dask bag groupby, which partitions by
  # Python's hash(); string hashes differ between processes unless they share
  # a seed, and then groups come out split (apache/beam#29365).
  environ = dict(os.environ)
  try:
    with dask.config.set({_HASH_SEED_CONFIG: "0"}):
      cluster = distributed.LocalCluster(
          n_workers=WORKERS, processes=True, threads_per_worker=1,
          dashboard_address=":0",
          local_directory=str(tmp_path_factory.mktemp("dask_workers")))
  finally:
    # Each nanny writes its pre-spawn variables (the seed, OMP_NUM_THREADS=1,
    # ...) into this process's environment and leaves them there; the tests
    # that run after these in this process must not inherit them.
    os.environ.clear()
    os.environ.update(environ)
  try:
    yield cluster
  finally:
    cluster.close()


def _dask_pipeline(cluster) -> beam.Pipeline:
  """A Beam pipeline on `cluster`, the runner handed over as an object."""
  dask_runner = prerequisites.module("apache_beam.runners.dask.dask_runner")
  return beam.Pipeline(
      runner=dask_runner.DaskRunner(),
      options=PipelineOptions(
          [f"--dask_client_address={cluster.scheduler_address}"]))


def _assert_known_failure(excinfo, known: KnownFailure) -> None:
  assert issubclass(excinfo.type, known.error), excinfo.value
  assert known.fragment in str(excinfo.value), excinfo.value
  if known.frames:
    innermost = excinfo.traceback[-1]
    path, function = str(innermost.path), innermost.name
    assert any(path.endswith(suffix) and function == name
               for suffix, name in known.frames), (path, function)


def test_the_translated_primitives_run_in_the_worker_processes(dask_cluster):
  pipeline = _dask_pipeline(dask_cluster)
  words = pipeline | "Words" >> beam.Create(["a", "b", "a", "c"])
  more = pipeline | "More" >> beam.Create(["c", "d"])
  _ = ((words, more) | beam.Flatten()
       | beam.Map(lambda word: (word, 1))
       | beam.GroupByKey()
       | beam.MapTuple(lambda word, ones: (word, sum(ones)))
       | beam.Map(lambda count: (os.getpid(), count)))

  result = pipeline.run()
  assert result.wait_until_finish() == PipelineState.DONE
  # One computed bag per transform, in the order they were visited.
  tagged_counts = result.client.gather(result.futures)[-1]
  assert sorted(count for _, count in tagged_counts) == [
      ("a", 2), ("b", 1), ("c", 2), ("d", 1)]
  assert os.getpid() not in {pid for pid, _ in tagged_counts}


def _side_input(pipeline, _):
  offset = beam.pvalue.AsSingleton(pipeline | "Offset" >> beam.Create([5]))
  _ = (pipeline | beam.Create([1])
       | beam.Map(lambda number, offset: number + offset, offset))


def _tagged_outputs(pipeline, _):
  outputs = (pipeline | beam.Create([1])
             | beam.FlatMap(lambda number: [beam.pvalue.TaggedOutput(
                 "odd", number)]).with_outputs("odd", main="even"))
  _ = outputs.odd | beam.Map(lambda number: number + 1)


def _dofn_setup(pipeline, _):

  # Defined here, it travels to the workers by value: a module-level class
  # would make each worker import this test module and all it imports.
  class SetUpDoFn(beam.DoFn):

    def setup(self):
      self.offset = 1  # pylint: disable=attribute-defined-outside-init

    def process(self, element):
      yield element + self.offset

  _ = pipeline | beam.Create([1]) | beam.ParDo(SetUpDoFn())


def _read(pipeline, directory):
  path = os.path.join(directory, "records.tfrecord")
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(b"record")
  _ = pipeline | beam.io.ReadFromTFRecord(path) | beam.Map(len)


def _file_sink(pipeline, directory):
  _ = (pipeline | beam.Create([b"record"])
       | beam.io.WriteToTFRecord(os.path.join(directory, "records")))


def _flatten_of_one(pipeline, _):
  _ = (pipeline | beam.Create([1]),) | beam.Flatten()


# What the steps use and the runner lacks -> (adds it to a pipeline, how the
# pipeline fails).
UNSUPPORTED = {
    "side_input": (_side_input, KnownFailure(
        TypeError, "'ArgumentPlaceholder'", ((_THIS_FILE, "<lambda>"),))),
    "tagged_outputs": (_tagged_outputs, KnownFailure(
        TypeError, "'TaggedOutput' and 'int'", ((_THIS_FILE, "<lambda>"),))),
    "dofn_setup": (_dofn_setup, KnownFailure(
        AttributeError, "no attribute 'offset'", ((_THIS_FILE, "process"),))),
    "read": (_read, _READ_FAILURE),
    # Beam's file sinks hand their initialisation result to the writers as a
    # side input.
    "file_sink": (_file_sink, _SIDE_INPUT_FAILURE),
    "flatten_of_one": (_flatten_of_one, _FLATTEN_OF_ONE_FAILURE),
}


@pytest.mark.parametrize("feature", sorted(UNSUPPORTED))
def test_what_the_steps_need_fails_with_its_known_error(feature, dask_cluster,
                                                        tmp_path):
  add_to, known = UNSUPPORTED[feature]
  pipeline = _dask_pipeline(dask_cluster)
  add_to(pipeline, str(tmp_path))

  with pytest.raises(Exception) as excinfo:
    pipeline.run().wait_until_finish()
  _assert_known_failure(excinfo, known)


def test_beam_does_not_know_the_runner_by_its_short_name(dask_cluster):
  config = config_lib.PipelineConfig(beam_args=[
      "--runner=DaskRunner",
      f"--dask_client_address={dask_cluster.scheduler_address}"])

  # What TFX does with the pipeline's Beam args in every Beam step.
  with pytest.raises(ValueError, match="Unexpected pipeline runner: DaskRunner"):
    beam.Pipeline(argv=config.full_beam_args)


def test_the_pipeline_cannot_start_the_runner_by_its_qualified_name(
    dask_cluster, tmp_path):
  dataset_dir = pipeline_fixtures.write_movielens_sample(
      tmp_path / "data", n_users=SAMPLE_USERS)
  config = pipeline_fixtures.sample_config(
      tmp_path / "workspace", dataset_dir, beam_args=[
          f"--runner={DASK_RUNNER_PATH}",
          f"--dask_client_address={dask_cluster.scheduler_address}"])

  # DaskRunner passes every Beam option to distributed.Client, TFX's own
  # (extra_packages, labels) and the runner's name among them.
  with pytest.raises(ValueError, match="Unexpected keyword arguments") as excinfo:
    local_runner.run(config)
  assert "'runner'" in str(excinfo.value)
  summary = run_summary.summarize(config.metadata_path)
  assert {run.component: run.state for run in summary.components} == {
      "ImportSchemaGen": "complete", _FIRST_BEAM_STEP: "failed"}


def _first_complete_execution(store, pipeline_name: str, component: str):
  context = store.get_context_by_type_and_name("node",
                                               f"{pipeline_name}.{component}")
  return next(
      execution
      for execution in sorted(store.get_executions_by_context(context.id),
                              key=lambda execution: execution.id)
      if execution.last_known_state == metadata_store_pb2.Execution.COMPLETE)


def _artifacts(store, execution_id: int, event_type) -> dict[str, list]:
  """An execution's input or output artifacts by key, as TFX artifacts."""
  by_key = collections.defaultdict(list)
  for event in store.get_events_by_execution_ids([execution_id]):
    if event.type == event_type:
      (artifact,) = store.get_artifacts_by_id([event.artifact_id])
      (artifact_type,) = store.get_artifact_types_by_id([artifact.type_id])
      by_key[event.path.steps[0].key].append(
          artifact_utils.deserialize_artifact(artifact_type, artifact))
  return dict(by_key)


@pytest.mark.parametrize("step", sorted(KNOWN_STEP_FAILURES))
def test_each_beam_step_fails_on_the_runner_with_its_known_error(
    step, dask_cluster, sample_runs, tmp_path):
  config = sample_runs.blessed_config
  store = mlmd.MetadataStore(pipeline_lib.local_metadata_config(config))
  execution = _first_complete_execution(store, config.pipeline_name, step)
  outputs = _artifacts(store, execution.id,
                       metadata_store_pb2.Event.OUTPUT)
  for key, artifacts in outputs.items():
    for artifact in artifacts:
      artifact.uri = str(tmp_path / key)
  (component,) = [component
                  for component in pipeline_lib.create_pipeline(config).components
                  if component.id == step]
  executor = component.executor_spec.executor_class(
      base_beam_executor.BaseBeamExecutor.Context(
          tmp_dir=str(tmp_path / "tmp"), unique_id=step,
          make_beam_pipeline_fn=lambda: _dask_pipeline(dask_cluster)))

  with pytest.raises(Exception) as excinfo:
    executor.Do(_artifacts(store, execution.id, metadata_store_pb2.Event.INPUT),
                outputs,
                data_types_utils.build_value_dict(execution.custom_properties))
  _assert_known_failure(excinfo, KNOWN_STEP_FAILURES[step])
