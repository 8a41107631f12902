"""Every path the project reads or writes itself, as a URI: local or object storage.

A path is a local path (`/data/ml`, `workspace/x`) or a URI fsspec knows:
`s3://bucket/key` (s3fs), `gs://bucket/key` (gcsfs), `memory://...`, and so
on. The readers and writers of the data contract, the importers, the item
vectors, the report, the index artifact and the serving demo all go through
this module; TensorFlow and TFX reach the same URIs through `tf.io.gfile`
(see `transforms.filesystems`), and Beam through its own file systems.

Why fsspec: this floor is pure pandas/numpy and must not load TensorFlow, and
pandas reads and writes through fsspec natively. S3 settings come from the
standard AWS environment variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`), which boto3 (Beam's S3) reads too.

Storage faults raise `StorageError` with one line that says what is wrong and
what to do; `check_access` turns them up before a run writes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import posixpath
from typing import IO, Iterator, Union

import fsspec

PathLike = Union[str, os.PathLike]

ENDPOINT_ENV_VAR = "AWS_ENDPOINT_URL"
_LOCAL_PROTOCOLS = ("file", "local")
# A dead endpoint should fail in seconds, not after botocore's default retries.
_S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60,
              "retries": {"max_attempts": 2}}
# The object `check_access` writes and removes to prove a location writable.
_WRITE_PROBE = ".vrec-write-check"


class StorageError(OSError):
  """A storage location cannot be used; the message is one line."""


def protocol(uri: PathLike) -> str:
  """`s3`, `gs`, ... for a URI; `file` for a local path."""
  text = os.fspath(uri)
  scheme, separator, _ = text.partition("://")
  return scheme if separator else "file"


def is_remote(uri: PathLike) -> bool:
  """Whether `uri` names object storage (or any non-local file system)."""
  return protocol(uri) not in _LOCAL_PROTOCOLS


def join(base: PathLike, *parts: str) -> str:
  """`base/part/...`; for a local base, as `os.path.join` does."""
  base = os.fspath(base)
  if is_remote(base):
    return posixpath.join(base, *parts)
  return os.path.join(base, *parts)


def name(uri: PathLike) -> str:
  """The last component of `uri` (a file or folder name)."""
  return posixpath.basename(os.fspath(uri).rstrip("/"))


def _filesystem(uri: PathLike) -> tuple[fsspec.AbstractFileSystem, str]:
  """The file system of `uri` and the path within it.

  S3 credentials and endpoint are passed explicitly, so that fsspec's cache
  of file system instances keys on them and a changed environment takes
  effect; listings are never cached, since TensorFlow and Beam write to the
  same buckets behind fsspec's back.
  """
  text = os.fspath(uri)
  options = {}
  if protocol(text) == "s3":
    options = {"use_listings_cache": False, "config_kwargs": _S3_CONFIG,
               "key": os.environ.get("AWS_ACCESS_KEY_ID"),
               "secret": os.environ.get("AWS_SECRET_ACCESS_KEY")}
    endpoint = os.environ.get(ENDPOINT_ENV_VAR)
    if endpoint:
      options["endpoint_url"] = endpoint
  elif is_remote(text):
    options = {"use_listings_cache": False}
  try:
    return fsspec.core.url_to_fs(text, **options)
  except ImportError as error:
    raise StorageError(f"{text}: no file system for {protocol(text)}:// "
                       f"is installed ({error})") from None


@contextlib.contextmanager
def _explained(uri: PathLike) -> Iterator[None]:
  """Re-raises credential, permission and connection faults as StorageError.

  A missing file stays a FileNotFoundError, as with local paths.
  """
  try:
    yield
  except (StorageError, FileNotFoundError, IsADirectoryError,
          NotADirectoryError):
    raise
  except Exception as error:  # pylint: disable=broad-except
    raise StorageError(explain(uri, error)) from error


def explain(uri: PathLike, error: BaseException) -> str:
  """One line saying why `uri` could not be used, and what to do.

  Args:
    uri: the location that failed.
    error: what the storage client raised.

  Returns:
    The message, without line breaks.
  """
  text = os.fspath(uri)
  kind = type(error).__name__
  detail = " ".join(str(error).split())
  endpoint = os.environ.get(ENDPOINT_ENV_VAR, "the default endpoint")
  if kind in ("NoCredentialsError", "PartialCredentialsError"):
    return (f"{text}: no credentials for object storage; set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
  if isinstance(error, PermissionError) or kind == "ClientError":
    return (f"{text}: access denied by {endpoint} ({detail}); check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
  if kind in ("EndpointConnectionError", "ConnectTimeoutError",
              "ClientConnectorError", "ServerTimeoutError") or isinstance(
                  error, (ConnectionError, TimeoutError)):
    return (f"{text}: cannot reach the object store at {endpoint} "
            f"({detail}); check {ENDPOINT_ENV_VAR} and the network")
  return f"{text}: {kind}: {detail}"


def _bucket_missing(uri: str) -> str:
  bucket = uri.split("://", 1)[1].split("/", 1)[0]
  return (f"{uri}: bucket {bucket!r} does not exist at "
          f"{os.environ.get(ENDPOINT_ENV_VAR, 'the default endpoint')}; "
          f"create it first (e.g. `aws s3 mb {protocol(uri)}://{bucket}`)")


# ---------------------------------------------------------------- queries


def exists(uri: PathLike) -> bool:
  """Whether a file or a folder (a non-empty prefix) is at `uri`."""
  fs, path = _filesystem(uri)
  with _explained(uri):
    return fs.exists(path)


def isfile(uri: PathLike) -> bool:
  fs, path = _filesystem(uri)
  with _explained(uri):
    return fs.isfile(path)


def isdir(uri: PathLike) -> bool:
  """Whether `uri` is a folder; in object storage, a prefix with objects."""
  fs, path = _filesystem(uri)
  with _explained(uri):
    return fs.isdir(path)


def listdir(uri: PathLike) -> list[str]:
  """The names (not paths) in folder `uri`, sorted.

  Raises:
    FileNotFoundError: if there is no folder at `uri`.
  """
  fs, path = _filesystem(uri)
  with _explained(uri):
    entries = fs.ls(path, detail=False)
  return sorted({name(entry) for entry in entries} - {""})


def size(uri: PathLike) -> int:
  """The size of file `uri` in bytes."""
  fs, path = _filesystem(uri)
  with _explained(uri):
    return fs.size(path)


def fingerprint(uri: PathLike) -> str:
  """Changes whenever a file directly in folder `uri` is added, removed or changed.

  Local files are compared by size and modification time, objects by size
  and ETag (a checksum of their content).
  """
  fs, path = _filesystem(uri)
  digest = hashlib.sha256()
  with _explained(uri):
    entries = fs.ls(path, detail=True) if fs.isdir(path) else []
  for entry in sorted(entries, key=lambda entry: entry["name"]):
    if entry.get("type") != "file":
      continue
    version = entry.get("ETag") or entry.get("mtime") or entry.get("created")
    digest.update(f"{name(entry['name'])}:{entry['size']}:{version}".encode())
  return digest.hexdigest()[:16]


# ---------------------------------------------------------------- reading and writing


def open_file(uri: PathLike, mode: str = "rb", **kwargs) -> IO:
  """Opens file `uri` (text or binary, as `mode` says); use as a context manager.

  Writing creates missing parent folders.
  """
  fs, path = _filesystem(uri)
  if "w" in mode and not is_remote(uri):
    fs.makedirs(fs._parent(path), exist_ok=True)  # pylint: disable=protected-access
  with _explained(uri):
    return fs.open(path, mode, **kwargs)


def read_bytes(uri: PathLike) -> bytes:
  with open_file(uri, "rb") as stream, _explained(uri):
    return stream.read()


def write_bytes(uri: PathLike, data: bytes) -> None:
  with open_file(uri, "wb") as stream, _explained(uri):
    stream.write(data)


def read_text(uri: PathLike, encoding: str = "utf-8") -> str:
  return read_bytes(uri).decode(encoding)


def write_text(uri: PathLike, text: str, encoding: str = "utf-8") -> None:
  write_bytes(uri, text.encode(encoding))


def makedirs(uri: PathLike) -> None:
  """Creates folder `uri`; object storage has no folders, so there it does nothing."""
  if not is_remote(uri):
    pathlib.Path(uri).mkdir(parents=True, exist_ok=True)


def remove(uri: PathLike) -> None:
  """Removes file `uri` if it exists."""
  fs, path = _filesystem(uri)
  with _explained(uri):
    if fs.isfile(path):
      fs.rm_file(path)


def upload_dir(local_dir: PathLike, uri: PathLike) -> None:
  """Copies local folder `local_dir` recursively to `uri` (merging)."""
  for source in sorted(pathlib.Path(local_dir).rglob("*")):
    if source.is_file():
      relative = source.relative_to(local_dir).as_posix()
      write_bytes(join(uri, *relative.split("/")), source.read_bytes())


def download_dir(uri: PathLike, local_dir: PathLike) -> None:
  """Copies folder `uri` recursively into local folder `local_dir`."""
  fs, path = _filesystem(uri)
  with _explained(uri):
    files = fs.find(path)
  root = path.rstrip("/") + "/"
  for file_path in files:
    target = pathlib.Path(local_dir, *file_path[len(root):].split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with _explained(uri):
      target.write_bytes(fs.cat_file(file_path))


# ---------------------------------------------------------------- checking a location


def check_access(uri: PathLike, *, write: bool) -> None:
  """Fails with a one-line StorageError unless `uri` can be read (or written).

  A local path always passes (local folders are created on demand). For
  object storage the bucket must exist and the credentials must be accepted;
  with `write`, a small object is written under `uri` and removed again.

  Args:
    uri: a folder the caller is about to read or write.
    write: whether the caller will write there.

  Raises:
    StorageError: naming `uri`, the fault and the fix.
  """
  text = os.fspath(uri)
  if not is_remote(text):
    return
  fs, path = _filesystem(text)
  bucket = path.split("/", 1)[0]
  try:
    if write:
      probe = f"{path.rstrip('/')}/{_WRITE_PROBE}"
      fs.pipe_file(probe, b"")
      fs.rm_file(probe)
    else:
      fs.ls(bucket, detail=False)
  except FileNotFoundError:
    raise StorageError(_bucket_missing(text)) from None
  except Exception as error:  # pylint: disable=broad-except
    if "NoSuchBucket" in str(error):
      raise StorageError(_bucket_missing(text)) from None
    raise StorageError(explain(text, error)) from None
