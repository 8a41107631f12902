"""Fixtures of the serving tests: the tiny model versions, and the server the
protocol tests talk to (a real TF Serving too: see `serving.testing_grpc`)."""

from __future__ import annotations

import pathlib
import shutil
from typing import Callable, Iterator

import pytest

from serving import testing_grpc
from serving import testing_models
from serving import testing_redis
from tests import prerequisites


def _exported(tmp_path_factory,
              export: Callable[[str], None]) -> pathlib.Path:
  """A fresh directory holding what `export` writes there."""
  directory = tmp_path_factory.mktemp(export.__name__) / "model"
  export(str(directory))
  return directory


@pytest.fixture(scope="session")
def model_template(tmp_path_factory) -> pathlib.Path:
  """The tiny retrieval model's SavedModel, to publish as versions."""
  return _exported(tmp_path_factory, testing_models.export_tiny_model)


@pytest.fixture(scope="session")
def scann_model_template(model_template, tmp_path_factory) -> pathlib.Path:
  """`model_template` with the ScaNN index of its items."""
  directory = tmp_path_factory.mktemp("scann_template") / "model"
  shutil.copytree(model_template, directory)
  testing_models.write_tiny_scann_index(str(directory))
  return directory


@pytest.fixture(scope="session")
def multi_vector_template(tmp_path_factory) -> pathlib.Path:
  """A two-vector query tower with a ScaNN index of the tiny items."""
  return _exported(tmp_path_factory,
                   testing_models.export_tiny_multi_vector_model)


@pytest.fixture(scope="session")
def history_model_template(tmp_path_factory) -> pathlib.Path:
  """A tiny model whose query reads the history, with a ScaNN index."""
  return _exported(tmp_path_factory, testing_models.export_tiny_history_model)


@pytest.fixture(scope="module")
def redis_process(tmp_path_factory) -> Iterator[testing_redis.RedisProcess]:
  """A `redis-server` of the module's own (`serving.testing_redis`)."""
  binary = prerequisites.program("redis-server")
  with testing_redis.redis_server(
      binary, tmp_path_factory.mktemp("redis")) as process:
    yield process


@pytest.fixture(scope="module")
def target(model_template,
           tmp_path_factory) -> Iterator[testing_grpc.Target]:
  """The one place that picks which server the protocol tests talk to."""
  if testing_grpc.EXTERNAL_ADDRESS:
    yield testing_grpc.Target(testing_grpc.EXTERNAL_ADDRESS, version=1,
                              ours=False)
    return
  base = tmp_path_factory.mktemp("models")
  if testing_grpc.EXTERNAL_BINARY:
    model_dir = base / testing_models.MODEL_NAME
    testing_grpc.publish_version(model_template, model_dir, 1)
    with testing_grpc.tf_serving_process(testing_grpc.EXTERNAL_BINARY,
                                         model_dir) as address:
      yield testing_grpc.Target(address, version=1, ours=False)
  else:
    with testing_grpc.serve_version_1(model_template, base) as handle:
      yield testing_grpc.Target(handle.address, version=1, ours=True)


@pytest.fixture(scope="module")
def stubs(target) -> Iterator[testing_grpc.Stubs]:
  with testing_grpc.open_stubs(target.address) as opened:
    yield opened
