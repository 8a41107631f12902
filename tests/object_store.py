"""A real S3-compatible object store on localhost, started and stopped by the tests.

The server is moto in server mode (`python -m moto.server`, pinned in
requirements-dev.txt) on a free port, with request signing enforced: only the
access key this module creates is accepted, so a wrong key fails as it would
on AWS. The project reaches it through the standard AWS environment variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...), which s3fs, boto3 (Beam) and,
through `transforms.filesystems`, TensorFlow's S3 file system all read.

API:

  with start_server() as server:        # MotoServer
    store = server.create_store()       # ObjectStore: a fresh bucket
    store.uri("datasets", "ml")         # "s3://<bucket>/datasets/ml"
    store.env()                         # env vars for a subprocess
    store.client()                      # a boto3 S3 client
    store.upload_directory(local_dir, "serving", "m", "1")
    with StoreProxy(store.endpoint_url) as proxy:
      store.env(AWS_ENDPOINT_URL=proxy.endpoint_url)  # through the proxy
      proxy.stop_answering()            # a store that no longer answers
      proxy.answer_again()
  # the server process is stopped here

Fixtures (import them into a test module: `from tests.object_store import
object_store, object_store_server  # noqa: F401`):
  object_store_server: one server for the session, stopped at its end.
  object_store: a fresh bucket per test, with `os.environ` set to its
    `env()` for the test's duration.

`STORAGE_FAULTS` lists the faults every storage entry point must report in
one line; `set_env` applies one's variables with a pytest monkeypatch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import BinaryIO, Iterator, Mapping, Optional

import pytest

from serving import testing_grpc
from tests import prerequisites

REGION = "us-east-1"
_USER = "vrec-tests"
# Creating the user, its policy and its key are the only unsigned calls the
# server accepts; every later request must be signed with that key.
_UNAUTHENTICATED_SETUP_CALLS = 3
_START_TIMEOUT_S = 60
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# How much of a dead server's stderr its error shows.
_STDERR_TAIL_BYTES = 4000
# A bucket no test creates.
MISSING_BUCKET = "vrec-no-such-bucket"
# (fault, environment overrides (None unsets), words its one-line error holds).
STORAGE_FAULTS = [
    ("missing bucket", {}, f"bucket '{MISSING_BUCKET}' does not exist"),
    ("wrong key", {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "access denied"),
    ("unreachable endpoint", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
     "cannot reach the object store at http://127.0.0.1:9"),
    ("missing credentials",
     {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
     "no credentials for object storage"),
]
# What TensorFlow's S3 plugin derives from AWS_ENDPOINT_URL when they are
# unset (`transforms.filesystems`): a process given another endpoint must not
# inherit this one's.
_PLUGIN_ENDPOINT_VARIABLES = ("S3_ENDPOINT", "S3_USE_HTTPS", "S3_VERIFY_SSL")
# How often the proxy's threads look at whether the store should answer.
_PROXY_POLL_S = 0.05
_PROXY_CHUNK_BYTES = 64 * 1024
_ALLOW_ALL_S3 = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
})


@dataclasses.dataclass(frozen=True)
class ObjectStore:
  """One bucket on the server, and the credentials that may use it.

  Attributes:
    endpoint_url: the server, e.g. `http://127.0.0.1:40123`.
    bucket: the bucket's name (created).
    access_key_id: a key the server accepts.
    secret_access_key: its secret.
  """
  endpoint_url: str
  bucket: str
  access_key_id: str
  secret_access_key: str

  def uri(self, *parts: str) -> str:
    """`s3://<bucket>/<parts joined by />`."""
    return "/".join([f"s3://{self.bucket}", *parts])

  def env(self, **overrides: str | None) -> dict[str, str]:
    """The process environment with this store's endpoint and credentials.

    Args:
      **overrides: variables to set instead; None removes one (e.g.
        `AWS_ACCESS_KEY_ID=None` for a process without credentials).

    Returns:
      A copy of `os.environ` with the AWS variables of this store; the user's
      own `~/.aws` files and the EC2 metadata service are switched off, so
      nothing but these variables supplies credentials.
    """
    env = {name: value for name, value in os.environ.items()
           if name not in _PLUGIN_ENDPOINT_VARIABLES}
    env.update({
        "AWS_ENDPOINT_URL": self.endpoint_url,
        "AWS_ACCESS_KEY_ID": self.access_key_id,
        "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    for name, value in overrides.items():
      if value is None:
        env.pop(name, None)
      else:
        env[name] = value
    return env

  def client(self):
    """A boto3 S3 client with this store's credentials."""
    boto3 = prerequisites.module("boto3")
    return boto3.client(
        "s3", endpoint_url=self.endpoint_url, region_name=REGION,
        aws_access_key_id=self.access_key_id,
        aws_secret_access_key=self.secret_access_key)

  def bucket_exists(self, name: str) -> bool:
    """Whether the server has a bucket `name` (of any owner)."""
    return name in {bucket["Name"] for bucket
                    in self.client().list_buckets().get("Buckets", [])}

  def upload_directory(self, local_dir: pathlib.Path, *parts: str) -> None:
    """Copies `local_dir` to `uri(*parts)`, its `saved_model.pb` last.

    A model server takes a version directory for complete once it holds a
    `saved_model.pb`, so it never sees half of this one.
    """
    files = sorted((path for path in local_dir.rglob("*") if path.is_file()),
                   key=lambda path: path.name == "saved_model.pb")
    client = self.client()
    for path in files:
      client.upload_file(str(path), self.bucket, "/".join(
          [*parts, *path.relative_to(local_dir).parts]))

  def keys(self, prefix: str = "") -> list[str]:
    """Every object key in the bucket under `prefix`, sorted."""
    paginator = self.client().get_paginator("list_objects_v2")
    return sorted(item["Key"]
                  for page in paginator.paginate(Bucket=self.bucket,
                                                 Prefix=prefix)
                  for item in page.get("Contents", []))


def set_env(monkeypatch: pytest.MonkeyPatch,
            env: Mapping[str, Optional[str]]) -> None:
  """Sets each variable of `env` for the test; None unsets it."""
  for name, value in env.items():
    if value is None:
      monkeypatch.delenv(name, raising=False)
    else:
      monkeypatch.setenv(name, value)


class MotoServer:
  """A moto S3 server process on a free localhost port; see `start_server`."""

  def __init__(self, process: subprocess.Popen, endpoint_url: str,
               access_key_id: str, secret_access_key: str):
    self.process = process
    self.endpoint_url = endpoint_url
    self._access_key_id = access_key_id
    self._secret_access_key = secret_access_key

  def create_store(self) -> ObjectStore:
    """Creates a fresh bucket and returns it with working credentials."""
    store = ObjectStore(self.endpoint_url, f"vrec-{uuid.uuid4().hex[:12]}",
                        self._access_key_id, self._secret_access_key)
    store.client().create_bucket(Bucket=store.bucket)
    return store

  def stop(self) -> None:
    """Stops the server process and waits for it."""
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()


class StoreProxy:
  """A TCP proxy in front of the S3 server that can stop answering.

  While the store answers, each connection is relayed to the server. After
  `stop_answering` it is a store behind a network partition: every request
  sent from then on, on a connection already open or on a new one, is read
  and never answered (an answer already on its way still arrives), so its
  client waits until its own timeout. `answer_again` closes the connections
  holding such requests, as a partition that heals resets them, and relays
  new ones again.

  Args:
    upstream_url: the S3 server, e.g. `http://127.0.0.1:40123`.
  """

  def __init__(self, upstream_url: str):
    upstream = urllib.parse.urlsplit(upstream_url)
    self._upstream = (upstream.hostname, upstream.port)
    self._listener = socket.create_server(("127.0.0.1", 0))
    self._listener.settimeout(_PROXY_POLL_S)
    self.endpoint_url = (
        f"http://127.0.0.1:{self._listener.getsockname()[1]}")
    self._lock = threading.Lock()
    # Set when the current outage ends; None while the store answers.
    self._outage: Optional[threading.Event] = None
    self._unanswered = 0
    self._closed = threading.Event()
    self._acceptor = threading.Thread(target=self._accept, daemon=True,
                                      name="store-proxy")
    self._acceptor.start()

  def stop_answering(self) -> None:
    with self._lock:
      if self._outage is None:
        self._outage = threading.Event()
        self._unanswered = 0

  def answer_again(self) -> None:
    with self._lock:
      outage, self._outage = self._outage, None
    if outage is not None:
      outage.set()

  def unanswered_requests(self) -> int:
    """Connections that sent a request in the current outage, unanswered."""
    with self._lock:
      return self._unanswered

  def close(self) -> None:
    self._closed.set()
    self.answer_again()
    self._acceptor.join()
    self._listener.close()

  def __enter__(self) -> "StoreProxy":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()

  def _accept(self) -> None:
    while not self._closed.is_set():
      try:
        client, _ = self._listener.accept()
      except TimeoutError:
        continue
      threading.Thread(target=self._serve, args=(client,), daemon=True,
                       name="store-proxy-connection").start()

  def _current_outage(self) -> Optional[threading.Event]:
    with self._lock:
      return self._outage

  def _serve(self, client: socket.socket) -> None:
    with client:
      outage = self._relay(client)
      if outage is not None:
        self._hold(client, outage)

  def _relay(self, client: socket.socket) -> Optional[threading.Event]:
    """Relays until either side closes (None), or until the client sends a
    request during an outage (that outage; the request is left unread)."""
    if (outage := self._current_outage()) is not None:
      return outage
    with socket.create_connection(self._upstream) as upstream:
      while not self._closed.is_set():
        readable, _, _ = select.select([client, upstream], [], [],
                                       _PROXY_POLL_S)
        for source in readable:
          outage = self._current_outage()
          if source is client and outage is not None:
            return outage
          data = source.recv(_PROXY_CHUNK_BYTES)
          if not data:
            return None
          (upstream if source is client else client).sendall(data)
    return None

  def _hold(self, client: socket.socket, outage: threading.Event) -> None:
    """Reads and drops what the client sends until the outage ends."""
    counted = False
    while not outage.wait(_PROXY_POLL_S) and not self._closed.is_set():
      if select.select([client], [], [], 0)[0]:
        if not client.recv(_PROXY_CHUNK_BYTES):
          return  # The client gave up.
        if not counted:
          with self._lock:
            if self._outage is outage:
              self._unanswered += 1
          counted = True


def _wait_until_up(process: subprocess.Popen, endpoint_url: str,
                   stderr: BinaryIO) -> None:
  deadline = time.monotonic() + _START_TIMEOUT_S
  while time.monotonic() < deadline:
    if process.poll() is not None:
      stderr.seek(0)
      tail = stderr.read()[-_STDERR_TAIL_BYTES:].decode(errors="replace")
      raise RuntimeError(f"moto server exited with status "
                         f"{process.returncode}; its stderr ends:\n{tail}")
    try:
      with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=1):
        return
    except (urllib.error.URLError, ConnectionError, TimeoutError):
      time.sleep(0.1)
  raise RuntimeError(f"moto server at {endpoint_url} did not answer in "
                     f"{_START_TIMEOUT_S} s")


def _create_credentials(endpoint_url: str) -> tuple[str, str]:
  """An IAM user allowed all of S3, and its key (the unsigned setup calls)."""
  boto3 = prerequisites.module("boto3")
  iam = boto3.client("iam", endpoint_url=endpoint_url, region_name=REGION,
                     aws_access_key_id="setup", aws_secret_access_key="setup")
  iam.create_user(UserName=_USER)
  iam.put_user_policy(UserName=_USER, PolicyName="s3",
                      PolicyDocument=_ALLOW_ALL_S3)
  key = iam.create_access_key(UserName=_USER)["AccessKey"]
  return key["AccessKeyId"], key["SecretAccessKey"]


@contextlib.contextmanager
def start_server() -> Iterator[MotoServer]:
  """Runs a moto S3 server on a free localhost port for the `with` block.

  Yields:
    The running server; it is stopped when the block ends, also on error.
  """
  prerequisites.module("moto.server")
  endpoint_url = f"http://127.0.0.1:{testing_grpc.free_port()}"
  env = dict(os.environ,
             INITIAL_NO_AUTH_ACTION_COUNT=str(_UNAUTHENTICATED_SETUP_CALLS),
             PYTHONPATH=os.pathsep.join(
                 filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])))
  # `tests.parent_bound` ends the server with this process, so a killed test
  # run leaves none behind; no `preexec_fn`, which is unsafe in a threaded
  # pytest worker.
  with tempfile.TemporaryFile() as stderr:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.parent_bound", str(os.getpid()),
         "moto.server", "-H", "127.0.0.1",
         "-p", endpoint_url.rsplit(":", 1)[1]],
        env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    server = MotoServer(process, endpoint_url, "", "")
    try:
      _wait_until_up(process, endpoint_url, stderr)
      server = MotoServer(process, endpoint_url,
                          *_create_credentials(endpoint_url))
      yield server
    finally:
      server.stop()


@pytest.fixture(scope="session")
def object_store_server() -> Iterator[MotoServer]:
  """One moto server for the test session."""
  with start_server() as server:
    yield server


@pytest.fixture
def object_store(object_store_server, monkeypatch) -> ObjectStore:
  """A fresh bucket, with this process's environment pointing at it."""
  store = object_store_server.create_store()
  set_env(monkeypatch, store.env())
  return store
