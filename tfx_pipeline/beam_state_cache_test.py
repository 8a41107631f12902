"""Tests for turning off the in-memory DirectRunner's side-input cache."""

import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import statecache
from apache_beam.testing import test_pipeline
from apache_beam.testing import util as beam_testing

from tfx_pipeline import beam_state_cache


def test_the_in_memory_runner_reads_side_inputs_without_sizing_them(
    monkeypatch):
  monkeypatch.setattr(worker_handlers, "STATE_CACHE_SIZE_MB",
                      worker_handlers.STATE_CACHE_SIZE_MB)
  sized = []
  monkeypatch.setattr(statecache, "get_deep_size",
                      lambda *values: sized.append(values) or 1)
  beam_state_cache.disable()
  with test_pipeline.TestPipeline(options=pipeline_options.PipelineOptions(
      ["--direct_running_mode=in_memory"])) as beam_pipeline:
    offset = beam_pipeline | "Offset" >> beam.Create([10])
    shifted = (beam_pipeline | beam.Create([1, 2])
               | beam.Map(lambda value, add: value + add,
                          add=beam.pvalue.AsSingleton(offset)))
    beam_testing.assert_that(shifted, beam_testing.equal_to([11, 12]))
  assert sized == []
