"""Which model versions are served, following TF Serving's version policy.

A background poller (`serving.server`) calls `ModelRegistry.refresh`: new
version directories are loaded, the chosen versions are served and the others
unloaded. Requests hold the servable they started with, so a swap never drops
an in-flight request. The base path is scanned through `tf.io.gfile`, so it
may be in object storage (`s3://bucket/serving`), as with TF Serving.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import types
from typing import Iterable, Mapping, Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2

from serving import errors
from serving import servables

_LOG = logging.getLogger(__name__)

_State = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
  """Which versions to serve, like TF Serving's `model_version_policy`.

  Attributes:
    kind: "latest" (the `num_versions` highest), "all", or "specific".
    num_versions: how many versions "latest" serves.
    versions: the versions "specific" serves.
  """
  kind: str = "latest"
  num_versions: int = 1
  versions: frozenset[int] = frozenset()

  @classmethod
  def parse(cls, text: str) -> "VersionPolicy":
    """Parses "latest:N", "all" or "specific:V1,V2,...".

    Raises:
      ValueError: for anything else.
    """
    kind, _, argument = text.strip().partition(":")
    try:
      if kind == "latest" and int(argument or "1") >= 1:
        return cls("latest", num_versions=int(argument or "1"))
      if kind == "all" and not argument:
        return cls("all")
      if kind == "specific" and argument:
        return cls("specific", versions=frozenset(
            int(version) for version in argument.split(",")))
    except ValueError:
      pass
    raise ValueError(f"bad version policy {text!r}: expected 'latest:N' "
                     "(N >= 1), 'all' or 'specific:V1,V2,...'")

  def select(self, versions: Iterable[int]) -> set[int]:
    """The versions to serve among the loadable `versions`."""
    versions = set(versions)
    if self.kind == "latest":
      return set(sorted(versions, reverse=True)[:self.num_versions])
    if self.kind == "specific":
      return versions & self.versions
    return versions


def parse_version(directory_name: str) -> Optional[int]:
  if directory_name.isascii() and directory_name.isdigit():
    version = int(directory_name)
    return version if version < 2**63 else None
  return None


# What scanning a base path raises: OSError locally, OpError (NotFoundError,
# ...) from tf.io.gfile's other file systems.
SCAN_ERRORS = (OSError, tf.errors.OpError)


def _subdirectories(path: str) -> dict[str, str]:
  """The directories in `path`, name -> path.

  Every entry is looked up with `stat`, which raises when it cannot answer:
  `tf.io.gfile.isdir` and `exists` answer False instead, and the S3 plugin
  answers "not found" for a store that does not answer, so a scan would take
  a store going away for its models being deleted, and unload them.

  Raises:
    OSError, tf.errors.OpError: `path` or one of its entries cannot be read.
  """
  names = (name.rstrip("/") for name in tf.io.gfile.listdir(path))
  children = {name: os.path.join(path, name) for name in names}
  return {name: child for name, child in children.items()
          if tf.io.gfile.stat(child).is_directory}


def ready_versions(model_dir: str) -> dict[int, str]:
  """Version directories that hold a `saved_model.pb`, by version.

  Raises:
    OSError, tf.errors.OpError: a directory cannot be read.
  """
  return {parse_version(name): path
          for name, path in _subdirectories(model_dir).items()
          if parse_version(name) is not None and
          servables.SAVED_MODEL_FILE in tf.io.gfile.listdir(path)}


def _raise(error: Exception):
  """An `onerror` for `tf.io.gfile.walk`, which skips what it cannot list."""
  raise error


def _fingerprint(path: str) -> tuple:
  """Changes whenever a file under `path` is added, removed or rewritten.

  Raises:
    OSError, tf.errors.OpError: a file or directory cannot be read.
  """
  files = []
  for root, _, names in tf.io.gfile.walk(path, onerror=_raise):
    for file_name in names:
      stat = tf.io.gfile.stat(os.path.join(root, file_name))
      files.append((os.path.relpath(os.path.join(root, file_name), path),
                    stat.length, stat.mtime_nsec))
  return tuple(sorted(files))


def _version_status(state: int, error: Optional[BaseException] = None,
                    ) -> get_model_status_pb2.ModelVersionStatus:
  status = get_model_status_pb2.ModelVersionStatus(state=state)
  if error is not None:
    status.status.error_code = (
        error.error_code if isinstance(error, tf.errors.OpError)
        else grpc.StatusCode.UNKNOWN.value[0])
    status.status.error_message = f"{type(error).__name__}: {error}"
  return status


class ModelRegistry:
  """The servables being served, refreshed from the model base path.

  Request threads read `_servables`, an immutable snapshot that `refresh`
  replaces whole; a request keeps the servable it resolved, so unloading a
  version only drops the registry's reference and the memory goes once the
  last in-flight request using it finishes.

  Args:
    model_base_path: `<base>` holding `<name>/<version>/`, or, with
      `model_name`, the directory of that one model.
    model_name: serve only this model, from `model_base_path` itself.
    version_policy: which versions to serve.
  """

  def __init__(self, model_base_path: str, model_name: Optional[str] = None,
               version_policy: VersionPolicy = VersionPolicy()):
    self._model_base_path = model_base_path
    self._model_name = model_name
    self._version_policy = version_policy
    self._servables: Mapping[str, Mapping[int, servables.Servable]] = (
        types.MappingProxyType({}))
    self._statuses: dict[
        str, dict[int, get_model_status_pb2.ModelVersionStatus]] = {}
    self._failed_fingerprints: dict[tuple[str, int], tuple] = {}
    self._status_lock = threading.Lock()
    self._refresh_lock = threading.Lock()

  def loaded_versions(self) -> dict[str, list[int]]:
    return {name: sorted(versions)
            for name, versions in self._servables.items() if versions}

  def resolve(self, model_spec: model_pb2.ModelSpec) -> servables.Servable:
    """The servable a request's ModelSpec asks for.

    Raises:
      ServingError: NOT_FOUND for an unknown model or version,
        INVALID_ARGUMENT for an invalid model name or a version label (labels
        are not supported).
    """
    name = model_spec.name
    # Names only key the loaded snapshot and are never joined to a path; the
    # check keeps a name from ever escaping the base path all the same.
    errors.check_model_name(name)
    versions = self._servables.get(name, {})
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version_label":
      raise errors.invalid_argument(
          f"Unrecognized servable version label: {model_spec.version_label}")
    if choice == "version":
      servable = versions.get(model_spec.version.value)
      if servable is None:
        raise errors.ServingError(
            grpc.StatusCode.NOT_FOUND, "Servable not found for request: "
            f"Specific({name}, {model_spec.version.value})")
      return servable
    if not versions:
      raise errors.ServingError(
          grpc.StatusCode.NOT_FOUND,
          f"Servable not found for request: Latest({name})")
    return versions[max(versions)]

  def version_statuses(self, name: str,
                       ) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
    with self._status_lock:
      return dict(self._statuses.get(name, {}))

  def has_model(self, name: str) -> bool:
    return name in self._servables

  def refresh(self) -> bool:
    """Loads and unloads versions to match the disk and the version policy.

    A directory that cannot be read changes nothing below it: its versions
    keep serving until a scan reads it again.

    Returns:
      Whether the base path and every model directory could be read.
    """
    with self._refresh_lock:
      try:
        model_dirs = self._model_dirs()
      except SCAN_ERRORS as error:
        # TF Serving keeps waiting for the base path to appear; so do we.
        _LOG.warning("Cannot scan %s: %s", self._model_base_path, error)
        return False
      scanned = True
      for name in sorted(set(model_dirs) | set(self._servables)):
        try:
          self._refresh_model(name, ready_versions(model_dirs[name])
                              if name in model_dirs else {})
        except SCAN_ERRORS as error:
          # Files vanishing mid-scan must not stop the other models' refresh.
          _LOG.warning("Cannot refresh model %s: %s", name, error)
          scanned = False
      return scanned

  def _model_dirs(self) -> dict[str, str]:
    if self._model_name is not None:
      return {self._model_name: self._model_base_path}
    # Hidden directories are staging areas; names that no request may use
    # are not worth loading.
    return {name: path
            for name, path in _subdirectories(self._model_base_path).items()
            if not name.startswith(".") and
            errors.MODEL_NAME_PATTERN.fullmatch(name)}

  def _refresh_model(self, name: str, available: Mapping[int, str]) -> None:
    """Loads the versions the policy wants, newest first, then unloads.

    Loading before unloading keeps the model available throughout, and a
    version that fails to load drops out of the candidates, so "latest"
    falls back to the newest version that loads.
    """
    loaded = dict(self._servables.get(name, {}))
    candidates = {version for version, path in available.items()
                  if not self._still_failed(name, version, path)}
    wanted = self._version_policy.select(candidates)
    while missing := sorted(wanted - loaded.keys(), reverse=True):
      servable = self._load(name, missing[0], available[missing[0]])
      if servable is None:
        candidates.discard(missing[0])
        wanted = self._version_policy.select(candidates)
      else:
        loaded[servable.version] = servable
        self._publish(name, loaded)
    for version in sorted(loaded.keys() - wanted):
      del loaded[version]
      self._publish(name, loaded)
      self._set_status(name, version, _version_status(_State.END))
      _LOG.info("Unloaded model %s version %d", name, version)

  def _still_failed(self, name: str, version: int, path: str) -> bool:
    """Whether the version failed to load and has not changed on disk since."""
    failed = self._failed_fingerprints.get((name, version))
    return failed is not None and failed == _fingerprint(path)

  def _load(self, name: str, version: int,
            path: str) -> Optional[servables.Servable]:
    self._set_status(name, version, _version_status(_State.LOADING))
    try:
      servable = servables.load_servable(name, version, path)
    except Exception as error:  # pylint: disable=broad-except
      # Any broken artifact must leave the versions already served alone.
      _LOG.error("Failed to load model %s version %d from %s: %s", name,
                 version, path, error)
      self._set_status(name, version, _version_status(_State.END, error))
      # Raises if the files cannot be read now either (the store went away):
      # the version is then not marked failed, and is tried again.
      self._failed_fingerprints[(name, version)] = _fingerprint(path)
      return None
    self._failed_fingerprints.pop((name, version), None)
    self._set_status(name, version, _version_status(_State.AVAILABLE))
    _LOG.info("Loaded model %s version %d from %s", name, version, path)
    return servable

  def _publish(self, name: str,
               versions: Mapping[int, servables.Servable]) -> None:
    self._servables = types.MappingProxyType(
        {**self._servables, name: types.MappingProxyType(dict(versions))})

  def _set_status(self, name: str, version: int,
                  status: get_model_status_pb2.ModelVersionStatus) -> None:
    status.version = version
    with self._status_lock:
      self._statuses.setdefault(name, {})[version] = status
